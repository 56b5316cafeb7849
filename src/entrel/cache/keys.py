"""LMDB key and value encoding of a snapshot, versioned by FORMAT_VERSION.

Keys are built from text that went through :func:`entrel.text.normalize`
(offline and online alike); this module only turns it into bytes. Changing
any encoding here means bumping FORMAT_VERSION: a reader refuses snapshots
of another version rather than misreading them.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "decode_row",
    "encode_row",
    "entity_id_key",
    "item_key",
    "query_key",
]

# 2: item and query vectors for the item-level similarity term.
FORMAT_VERSION = 2

# LMDB keys are at most 511 bytes; longer queries are keyed by a digest.
_MAX_PLAIN_KEY = 400
_ROW_IDS = np.dtype("<u4")
_ROW_SCORES = np.dtype("<f4")


def query_key(normalized_query: str) -> bytes:
    """Key of a query's score row: ``q:<utf-8>``, or ``h:<blake2b>`` when too long."""
    raw = normalized_query.encode("utf-8")
    if len(raw) <= _MAX_PLAIN_KEY:
        return b"q:" + raw
    return b"h:" + hashlib.blake2b(raw, digest_size=32).hexdigest().encode("ascii")


def item_key(item_id: str) -> bytes:
    raw = item_id.encode("utf-8")
    if not raw or len(raw) > _MAX_PLAIN_KEY:
        raise ValueError(f"item id must be 1 to {_MAX_PLAIN_KEY} bytes of UTF-8, got {len(raw)}: {item_id[:40]!r}")
    return raw


def entity_id_key(entity_id: int) -> bytes:
    """Big-endian so LMDB's byte order is id order."""
    return int(entity_id).to_bytes(4, "big")


def encode_row(entity_ids: np.ndarray, scores: np.ndarray) -> bytes:
    """A query's row: entity ids ascending, then their scores, as little-endian arrays."""
    order = np.argsort(entity_ids, kind="stable")
    ids = np.asarray(entity_ids, dtype=_ROW_IDS)[order]
    if ids.size and np.any(ids[1:] == ids[:-1]):
        raise ValueError("a query row holds an entity twice")
    return ids.tobytes() + np.asarray(scores, dtype=_ROW_SCORES)[order].tobytes()


def decode_row(value: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(entity ids ascending, scores) of an encoded row."""
    n = len(value) // (_ROW_IDS.itemsize + _ROW_SCORES.itemsize)
    ids = np.frombuffer(value, dtype=_ROW_IDS, count=n)
    scores = np.frombuffer(value, dtype=_ROW_SCORES, count=n, offset=n * _ROW_IDS.itemsize)
    return ids, scores
