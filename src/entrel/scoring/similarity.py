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
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from entrel.config import SimilaritySettings
from entrel.scoring.cross_encoder import ModelNotFoundError, resolve_model_path

__all__ = ["TextEncoder", "similarities"]

log = logging.getLogger(__name__)


class TextEncoder:
    """A sentence-transformers bi-encoder giving unit vectors; thread-safe."""

    def __init__(self, settings: SimilaritySettings, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        self.settings = settings
        try:
            self.model = SentenceTransformer(resolve_model_path(settings.encoder), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"similarity encoder {settings.encoder!r} not found: no such local directory, and not in the offline "
                f"Hugging Face cache. Name a sentence-transformers bi-encoder in similarity.encoder, or set "
                f"similarity.weight=0 to score by entities alone. ({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) unit vectors in float16, as the snapshot keeps them, so a vector
        encoded live equals its cached copy; no rows and no columns for no texts."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float16)
        with self._lock:
            vectors = self.model.encode(
                list(texts),
                batch_size=self.settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.asarray(vectors, dtype=np.float16)

    def encode_query(self, normalized_query: str) -> np.ndarray:
        """The query's vector, encoded once per process while it stays among the recently used."""
        with self._lock:
            cached = self._queries.get(normalized_query)
            if cached is not None:
                self._queries.move_to_end(normalized_query)
                return cached
        vector = self.encode([normalized_query])[0]
        with self._lock:
            self._queries[normalized_query] = vector
            while len(self._queries) > self.settings.query_cache_size:
                self._queries.popitem(last=False)
        return vector


def similarities(query: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine of a unit query vector with each unit item vector, negatives counted as 0 (unrelated)."""
    return np.clip(items.astype(np.float32) @ query.astype(np.float32), 0.0, 1.0)
