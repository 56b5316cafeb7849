"""Item vectors carried from one nightly run to the next: only new or changed texts are encoded.

Re-encoding a whole catalog every night costs minutes per ten thousand
items on a CPU; most items do not change. Vectors are kept under
``<data_dir>/vectors/<encoder fingerprint>.npz``, keyed by a digest of the
item text, so another encoder starts afresh and an edited item is encoded
again. Each run keeps only the texts it used, written atomically: a killed
run leaves the previous file. The file is a cache: an unreadable one is
logged and rebuilt, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from entrel.catalog import CatalogItem, Entity, item_text
from entrel.scoring import TextEncoder, bag_vectors

__all__ = ["EncodedItems", "catalog_vectors", "encode_items"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedItems:
    # (len(texts), dimension) float16, in the order of the texts.
    vectors: np.ndarray
    reused: int
    encoded: int


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _load(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["digests"].tolist(), data["vectors"], strict=True))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("item vector cache unreadable: encoding every item", extra={"path": str(path), "error": str(exc)})
        return {}


def _save(path: Path, vectors: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    digests = sorted(vectors)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, digests=np.array(digests), vectors=np.stack([vectors[d] for d in digests]))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def encode_items(encoder: TextEncoder, texts: Sequence[str], cache_dir: Path, progress: bool = False) -> EncodedItems:
    """Vectors of `texts`, reusing those the previous run encoded with the same encoder."""
    path = Path(cache_dir) / f"{encoder.fingerprint}.npz"
    digests = [_digest(t) for t in texts]
    known = _load(path)
    missing = {d: t for d, t in zip(digests, texts, strict=True) if d not in known}
    if missing:
        known.update(zip(missing, encoder.encode(list(missing.values()), progress=progress), strict=True))
    if not digests:
        return EncodedItems(np.zeros((0, 0), dtype=np.float16), 0, 0)
    _save(path, {d: known[d] for d in set(digests)})
    vectors = np.stack([known[d] for d in digests]).astype(np.float16)
    return EncodedItems(vectors, reused=len(digests) - sum(d in missing for d in digests), encoded=len(missing))


def catalog_vectors(
    encoder: TextEncoder,
    items: Sequence[CatalogItem],
    entities: Sequence[Sequence[Entity]],
    source: str,
    cache_dir: Path,
    progress: bool = False,
) -> EncodedItems:
    """The snapshot's item vectors as `similarity.source` says: each item's text encoded ("item_text"), or
    the bag of its entities' vectors ("entities"; each distinct entity text encoded once, and the
    counts are of entity texts)."""
    if source != "entities":
        return encode_items(encoder, [item_text(item) for item in items], cache_dir, progress)
    counts = {"reused": 0, "encoded": 0}

    def encode(texts: list[str]) -> np.ndarray:
        # Their own file: switching sources back and forth never drops the other's vectors.
        encoded = encode_items(encoder, texts, Path(cache_dir) / "entities", progress)
        counts.update(reused=encoded.reused, encoded=encoded.encoded)
        return encoded.vectors

    bags = bag_vectors([[entity.text for entity in item_entities] for item_entities in entities], encode, encoder.dimension)
    assert bags is not None, "encode_items always encodes"
    return EncodedItems(bags, **counts)
