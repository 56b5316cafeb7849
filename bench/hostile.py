"""Hostile requests: inline items at the largest sizes the limits allow, and undecodable bodies.

Shared by the flood benchmark (bench/flood.py) and the hostile-input tests,
so both attack the server with the same payloads.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from entrel.config import ServerSettings
from entrel.v1 import relevance_pb2 as pb

__all__ = ["fuzz_body", "largest_inline_items", "rss_mb"]

# Expands 18-fold under NFKC: the normalised-length limits must hold.
_EXPANDING = "\ufdfa"


def _words(rng: random.Random, chars: int) -> str:
    """Novel text (random lowercase words) of exactly `chars` characters, so nothing is cached."""
    words: list[str] = []
    length = -1
    while length < chars:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


def _item(rng: random.Random, limits: ServerSettings, n: int, attributes: int) -> pb.InlineItem:
    field = limits.max_inline_field_chars
    title = _words(rng, limits.max_inline_title_chars)
    if n % 4 == 3:  # as long as the normalised-title limit allows
        title = _EXPANDING * (limits.max_inline_title_chars // 18) + " chair"
    return pb.InlineItem(
        item_id=f"flood-{n}-{rng.getrandbits(32):08x}",
        title=title,
        description=_words(rng, min(limits.max_inline_description_chars, 2000)),
        brand=_words(rng, min(field, 20)),
        color=_words(rng, min(field, 10)),
        category_path=[_words(rng, min(field, 20)) for _ in range(min(limits.max_inline_category_levels, 3))],
        attributes={_words(rng, 12): _words(rng, min(field, 60)) for _ in range(attributes)},
    )


def largest_inline_items(rng: random.Random, limits: ServerSettings) -> list[pb.InlineItem]:
    """As many inline items as fit the request budget, each with a title at its limit."""
    attributes = min(limits.max_inline_attributes, 20)
    items: list[pb.InlineItem] = []
    used = 0
    while len(items) < limits.max_inline_items:
        item = _item(rng, limits, len(items), attributes)
        size = sum(map(len, (item.title, item.description, item.brand, item.color, *item.category_path)))
        size += sum(len(k) + len(v) for k, v in item.attributes.items())
        if used + size > limits.max_inline_chars:
            break
        items.append(item)
        used += size
    return items


def fuzz_body(rng: random.Random, valid: bytes) -> bytes:
    """One hostile request body: random bytes, a valid body with flipped or cut bytes, or invalid UTF-8."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 512))
    if kind == 1:
        body = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        return bytes(body)
    if kind == 2:
        return valid[: rng.randrange(len(valid))]
    # field 1 (query), length-delimited, holding bytes that are not UTF-8 (a lone surrogate, 0xff)
    bad = rng.choice([b"\xed\xa0\x80", b"\xff", b"\xc3", b"chair \x80\x80"])
    return bytes([0x0A, len(bad)]) + bad + valid


def _rss_of(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # ended meanwhile
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")), 0.0)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The parent id is the second field after the command name, which may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def rss_mb(pid: int) -> float:
    """Resident memory (MiB) of process `pid` and its child processes (the inline extraction workers)."""
    return _rss_of(pid) + sum(_rss_of(child) for child in _children(pid))
