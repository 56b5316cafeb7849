"""The bi-encoder behind the item-level similarity term: unit vectors of queries and item texts.

Item vectors are computed once by the nightly job and stored in the
snapshot, as are the vectors of the queries it precomputes; serving then
costs one dot product per item. A query outside the snapshot is encoded
live once (a short text: milliseconds on a CPU) and kept in a bounded
per-process cache, as are inline items' texts for the request that sends them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from entrel.config import SimilaritySettings
from entrel.scoring.cross_encoder import ModelNotFoundError, Scorer, model_fingerprint, resolve_model_path

__all__ = ["TakingTurns", "TextEncoder", "bag_vectors", "entity_bags", "similarities"]

log = logging.getLogger(__name__)


class TextEncoder:
    """A sentence-transformers bi-encoder giving unit vectors; thread-safe."""

    def __init__(self, settings: SimilaritySettings, device: str = "cpu", compute_lock: threading.Lock | None = None) -> None:
        """`compute_lock`: shared with the other model of the process (the server's cross-encoder), so
        the two never run at once: two torch calls side by side on a small CPU each slow down far more
        than twice (their thread teams fight over the cores)."""
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        self.settings = settings
        path = resolve_model_path(settings.encoder)
        try:
            self.model = SentenceTransformer(path, device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"similarity encoder {settings.encoder!r} not found: no such local directory, and not in the offline "
                f"Hugging Face cache. Name a sentence-transformers bi-encoder in similarity.encoder, or set "
                f"similarity.weight=0 to score by entities alone. ({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        self.model.max_seq_length = settings.max_length
        # get_embedding_dimension since sentence-transformers 5.x; the older name is deprecated there.
        dimension_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension_of() or 0)
        # Identity of the weights (a local directory's files), else the configured name.
        weights = model_fingerprint(path) if Path(path).is_dir() else settings.encoder.replace("/", "--")
        self.fingerprint = f"{weights}-{settings.max_length}"
        self._lock = compute_lock or threading.Lock()
        self._cache_lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) unit vectors in float16, as the snapshot keeps them, so a vector
        encoded live equals its cached copy; no rows and no columns for no texts."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float16)
        with self._lock:
            return self._encode(texts, progress)

    def encode_by(self, texts: Sequence[str], until: float) -> np.ndarray | None:
        """As :meth:`encode`, or None if the encoder is not free before `until` (monotonic clock).

        Requests share one encoder: one that would wait past its own time
        leaves instead of queueing behind the others.
        """
        if not self._lock.acquire(timeout=max(0.0, until - time.monotonic())):
            return None
        try:
            return self._encode(texts, False)
        finally:
            self._lock.release()

    def _encode(self, texts: Sequence[str], progress: bool) -> np.ndarray:
        """Callers hold the lock."""
        vectors = self.model.encode(
            list(texts),
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float16)

    def encode_query(self, normalized_query: str, until: float) -> np.ndarray | None:
        """The query's vector, encoded once per process while it stays among the recently used;
        None if the encoder is not free before `until`."""
        with self._cache_lock:
            cached = self._queries.get(normalized_query)
            if cached is not None:
                self._queries.move_to_end(normalized_query)
                return cached
        encoded = self.encode_by([normalized_query], until)
        if encoded is None:
            return None
        vector = encoded[0]
        with self._cache_lock:
            self._queries[normalized_query] = vector
            while len(self._queries) > self.settings.query_cache_size:
                self._queries.popitem(last=False)
        return vector


class TakingTurns:
    """A scorer that holds `lock` while it scores: the server's cross-encoder, taking turns with the encoder."""

    def __init__(self, scorer: Scorer, lock: threading.Lock) -> None:
        self.scorer = scorer
        self.fingerprint = scorer.fingerprint
        self._lock = lock

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        with self._lock:
            return self.scorer.score(pairs)


# Values per torch conversion: the most below its kernels' grain size (32768), so a call stays on the calling
# thread; each call costs ~10 us of dispatch, so half as many calls as at 16384 convert 1000 x 384 in 0.6x the time.
_CHUNK_VALUES = 32767


def as_float32(vectors: np.ndarray) -> np.ndarray:
    """`vectors` as float32: the values ``astype`` gives (NaN payloads aside), much faster from float16.

    Vectors are stored in float16 (half the disk and memory); the server
    widens a snapshot's item vectors once when it opens it, and this
    widens the rest (entity vectors summed into bags, vectors of texts
    encoded in float16). numpy casts float16 with a scalar loop, about 3 ns
    a value; torch casts with the CPU's conversion instructions; chunks
    below its grain size keep it off torch's thread pool, so serving
    threads do not contend there.
    """
    if vectors.dtype != np.float16 or vectors.ndim != 2 or not vectors.size:
        return np.asarray(vectors, dtype=np.float32)
    out = torch.empty(vectors.shape, dtype=torch.float32)
    source = torch.from_numpy(np.ascontiguousarray(vectors))
    step = max(1, _CHUNK_VALUES // vectors.shape[1])
    for start in range(0, len(vectors), step):
        out[start : start + step].copy_(source[start : start + step])
    return out.numpy()


def entity_bags(per_item: Sequence[Sequence[str]], texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    """Item vectors from entity vectors (``similarity.source = "entities"``): the normalised sum of each item's
    entity text vectors, float16 like the snapshot's; zeros for an item without entities (similarity 0).

    `vectors[k]` is the unit vector of `texts[k]`; `per_item` names each item's entity texts. The
    cosine of a query with an item's bag is sum_e cos(q, e) / ||sum_e v_e||: per-(query, entity)
    similarities over one norm per item, so the term is itself an aggregate of entity scores.
    """
    row_of = {text: k for k, text in enumerate(texts)}
    sums = np.zeros((len(per_item), vectors.shape[1]), dtype=np.float32)
    for item, entity_texts in enumerate(per_item):
        if entity_texts:
            sums[item] = as_float32(vectors[[row_of[t] for t in entity_texts]]).sum(axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0).astype(np.float16)


def bag_vectors(
    per_item: Sequence[Sequence[str]], encode: Callable[[list[str]], np.ndarray | None], dimension: int
) -> np.ndarray | None:
    """Bags of items given by their entity texts, each distinct text encoded once by `encode` (unit vectors
    of `dimension`); None when `encode` gives None (an encoder that stayed busy). The one path for the
    nightly's catalog, inline items and the evaluation."""
    texts = sorted({text for item_texts in per_item for text in item_texts})
    vectors = encode(texts) if texts else np.zeros((0, dimension), dtype=np.float16)
    return None if vectors is None else entity_bags(per_item, texts, vectors)


def cosines(query: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine of a unit query vector with each unit item vector, in float32, negatives kept."""
    return as_float32(items) @ query.astype(np.float32)


def similarities(query: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine of a unit query vector with each unit item vector, negatives counted as 0 (unrelated)."""
    return clip_similarities(cosines(query, items))


def clip_similarities(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Cosines as similarities: negatives counted as 0 (unrelated). With `out`, in place (a caller that clips
    many groups' cosines at once)."""
    return np.clip(values, 0.0, 1.0, out=out)
