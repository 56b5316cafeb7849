"""Protobuf wire bytes of a response's ItemScores, written from the engine's columns.

Building one ItemScore message per item through the protobuf runtime costs
about 1.5 us an item (a Python call with ten keyword arguments), and a
Python loop writing the bytes item by item hardly less: more than all the
scoring of a cached item. The items of an unexplained answer are plain (a
string id, a status, five floats, three mostly empty strings), so their
encoding is written here with a fixed number of numpy operations per
response, whatever its size: every item's fixed-width fields in one
record array, lengths as varints computed on arrays, then one gather per
kind of segment into the output. The bytes are the ``items`` field of
ScoreItemsResponse; parsing them gives the messages the runtime builds
(tests/test_wire.py compares them field by field, and their bytes).
A batch's groups are encoded in one such pass and cut apart at their
items' ends, so ten groups cost one set of numpy calls, not ten.

Field numbers and types come from proto/entrel/v1/relevance.proto (ItemScore);
a test fails when they drift.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["item_scores_by_group", "varint"]

# Wire types: 0 varint, 2 length-delimited, 5 fixed32. A tag is field << 3 | wire type.
_LEN, _F32, _VARINT = 2, 5, 0


def _tag(field: int, wire_type: int) -> int:
    return field << 3 | wire_type


# ItemScore: 1 item_id, 2 score, 3 status, 4 message, 6 title, 7 coverage,
# 8 compatibility, 9 entity_score, 10 similarity, 11 excluded (5, entities, is never set here).
_ITEM_ID, _MESSAGE, _TITLE, _EXCLUDED = (bytes([_tag(f, _LEN)]) for f in (1, 4, 6, 11))
# The fixed-width part of an item, in one record: tag, value, tag, value, ...
_FIXED = np.dtype(
    [
        ("t_score", "u1"),
        ("score", "<f4"),
        ("t_status", "u1"),
        ("status", "u1"),
        ("t_coverage", "u1"),
        ("coverage", "<f4"),
        ("t_compatibility", "u1"),
        ("compatibility", "<f4"),
        ("t_entity_score", "u1"),
        ("entity_score", "<f4"),
        ("t_similarity", "u1"),
        ("similarity", "<f4"),
    ]
)
_FIXED_TAGS = {
    "t_score": _tag(2, _F32),
    "t_status": _tag(3, _VARINT),
    "t_coverage": _tag(7, _F32),
    "t_compatibility": _tag(8, _F32),
    "t_entity_score": _tag(9, _F32),
    "t_similarity": _tag(10, _F32),
}
# A fixed part with its tags set and every value 0.
_TAGS = np.zeros((), dtype=_FIXED)
for _name, _value in _FIXED_TAGS.items():
    _TAGS[_name] = _value
# The response's `items` field (1) around each item.
_ITEM = bytes([_tag(1, _LEN)])
# One-byte varints, the common lengths.
_SHORT = [bytes([n]) for n in range(128)]


def varint(n: int) -> bytes:
    """The base-128 varint of a non-negative int."""
    if n < 128:
        return _SHORT[n]
    out = bytearray()
    while n >= 128:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(tag: bytes, text: str) -> bytes:
    if not text:
        return b""
    data = text.encode("utf-8")
    return tag + varint(len(data)) + data


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Base-128 varints of non-negative ints below 2**28: (n x 4 bytes, of which the first k are used; k)."""
    top = int(values.max()) if values.size else 0
    if top < 128:  # the common case: one byte each
        return values.astype(np.uint8)[:, None], np.ones(len(values), dtype=np.int64)
    if top >= 1 << 28:
        raise ValueError("a length past 256 MiB")
    groups = np.stack([(values >> (7 * k)) & 0x7F for k in range(4)], axis=1).astype(np.uint8)
    more = np.stack([values >> (7 * k) > 0 for k in range(1, 4)], axis=1)
    groups[:, :3] |= more.astype(np.uint8) << 7
    return groups, 1 + more.sum(axis=1)


def _gather(segments: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int) -> tuple[bytes, np.ndarray]:
    """Per row i, the bytes ``flat[start[i] : start[i] + length[i]]`` of each (flat, start, length) segment in
    turn; rows one after another; and where each row ends. A fixed number of numpy calls, however many rows."""
    lengths = np.stack([length for _, _, length in segments], axis=1)
    ends = np.cumsum(lengths.ravel()).reshape(n, len(segments))
    out = np.empty(int(ends[-1, -1]) if n else 0, dtype=np.uint8)
    for k, (flat, start, length) in enumerate(segments):
        total = int(length.sum())
        if not total:
            continue
        before = np.cumsum(length) - length  # where each row's run starts among this segment's bytes
        source = np.arange(total) + np.repeat(start - before, length)
        out[source + np.repeat(ends[:, k] - length - start, length)] = flat[source]
    return out.tobytes(), ends[:, -1]


def _chunks(chunks: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chunks as one flat buffer: (buffer, starts, lengths)."""
    lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
    return np.frombuffer(b"".join(chunks), dtype=np.uint8), np.cumsum(lengths) - lengths, lengths


def _strings(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UTF-8 of each text in one flat buffer, each followed by a NUL: (buffer, starts, byte lengths).

    One join in C, and the lengths from where the NULs fall: asking each text its length (a Python call
    per text) took 50 us a thousand, five times the join.
    """
    flat = np.frombuffer(("\x00".join(texts) + "\x00").encode("utf-8"), dtype=np.uint8)
    ends = np.flatnonzero(flat == 0)
    if len(ends) != len(texts):  # some text holds a NUL itself: encode each alone
        flat, starts, lengths = _chunks([t.encode("utf-8") + b"\x00" for t in texts])
        return flat, starts, lengths - 1
    starts = np.concatenate([[0], ends[:-1] + 1])
    return flat, starts, ends - starts


def _uniform(fixed: np.ndarray, ids: np.ndarray, length: int) -> tuple[bytes, np.ndarray]:
    """Items whose ids are all `length` bytes and that carry no strings but the id (`ids` as `_strings`
    lays them out, each followed by a NUL): each one record of one layout (items tag, body length, fixed
    fields, id tag, id length, id), written as one array; and where each record ends."""
    n, size = len(fixed), _FIXED.itemsize
    width = size + 4 + length
    records = np.empty((n, width), dtype=np.uint8)
    records[:, :2] = (_ITEM[0], size + 2 + length)
    records[:, 2 : 2 + size] = fixed.view(np.uint8).reshape(n, size)
    records[:, 2 + size : 4 + size] = (_ITEM_ID[0], length)
    records[:, 4 + size :] = ids.reshape(n, length + 1)[:, :length]
    return records.tobytes(), np.arange(1, n + 1) * width


def item_scores_by_group(
    sizes: Sequence[int],
    item_ids: Sequence[str],
    scores: np.ndarray,
    statuses: np.ndarray,
    messages: np.ndarray,
    message_texts: Sequence[str],
    coverage: np.ndarray,
    compatibility: np.ndarray,
    entity_scores: np.ndarray,
    similarity: np.ndarray,
    titles: Sequence[str] | None = None,
    excluded: Sequence[str] | None = None,
) -> list[bytes]:
    """Repeated field 1 (ItemScore) of a ScoreItemsResponse per group: the first `sizes[0]` items, the next `sizes[1]`, ...

    The columns hold every group's items one group after another (`sizes`
    sums to their length); all are encoded at once, then cut at the groups'
    ends. `statuses` are ItemStatus enum numbers (1..127), `messages` indices into
    `message_texts`; floats are written as float32, as the runtime does.
    Every float is written, zeros too (a parser takes an explicit zero as
    the default it is), and the id comes after the other fields (a parser
    takes fields in any order).
    """
    n, size = len(item_ids), _FIXED.itemsize
    fixed = np.frombuffer(bytearray(_TAGS.tobytes() * n), dtype=_FIXED)
    fixed["score"] = scores
    fixed["status"] = statuses
    fixed["coverage"] = coverage
    fixed["compatibility"] = compatibility
    fixed["entity_score"] = entity_scores
    fixed["similarity"] = similarity
    # Strings past the fixed part: field order does not matter on the wire.
    if titles is None and excluded is None:  # the common case: a message from a few texts, by code
        table, table_starts, table_lengths = _chunks([_string(_MESSAGE, text) for text in message_texts])
        tails = (table, table_starts[messages], table_lengths[messages])
    else:
        encoded = [_string(_MESSAGE, text) for text in message_texts]
        parts = [[encoded[m] for m in messages.tolist()]]
        parts += [[_string(_TITLE, t) for t in titles]] if titles is not None else []
        parts += [[_string(_EXCLUDED, e) for e in excluded]] if excluded is not None else []
        tails = _chunks([b"".join(p) for p in zip(*parts, strict=True)])
    ids, id_starts, id_lengths = _strings(item_ids)
    if n and not tails[2].any() and id_lengths.min() == id_lengths.max() < 128 - size - 2:
        return _cut(*_uniform(fixed, ids, int(id_lengths[0])), sizes)
    # Per item, one head row: items tag, body length, the fixed fields, id tag, id length; then the id, then the tail.
    id_varints, id_varint_lengths = _varints(id_lengths)
    body_lengths = size + 1 + id_varint_lengths + id_lengths + tails[2]
    body_varints, body_varint_lengths = _varints(body_lengths)
    head = np.zeros((n, 1 + 4 + size + 1 + 4), dtype=np.uint8)
    rows = np.arange(n)[:, None]
    head[:, 0] = _ITEM[0]
    at = 1 + body_varint_lengths
    head[:, 1 : 1 + body_varints.shape[1]] = body_varints
    head[rows, at[:, None] + np.arange(size)] = np.frombuffer(fixed.tobytes(), dtype=np.uint8).reshape(n, size)
    at = at + size
    head[np.arange(n), at] = _ITEM_ID[0]
    head[rows, at[:, None] + 1 + np.arange(id_varints.shape[1])] = id_varints
    head_lengths = at + 1 + id_varint_lengths
    width = head.shape[1]
    segments = [(head.ravel(), np.arange(n) * width, head_lengths), (ids, id_starts, id_lengths), tails]
    return _cut(*_gather(segments, n), sizes)


def _cut(encoded: bytes, ends: np.ndarray, sizes: Sequence[int]) -> list[bytes]:
    """`encoded` (items ending at `ends`) cut into groups of `sizes` items."""
    if len(sizes) == 1:
        return [encoded]
    bounds = np.concatenate([[0], ends])[np.cumsum([0, *sizes])].tolist()
    return [encoded[start:stop] for start, stop in itertools.pairwise(bounds)]
