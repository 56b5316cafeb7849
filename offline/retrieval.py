"""BM25 first stage: which items a query would plausibly be shown.

The nightly job precomputes a query's scores for the entities of the items
this retrieves (the ranking service's candidates are similar); the
evaluation uses it as the lexical baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np

__all__ = ["Bm25Index"]


class Bm25Index:
    """BM25 over one text per document; queries are scored against all of them."""

    def __init__(self, documents: Sequence[str]) -> None:
        self.size = len(documents)
        self._model = bm25s.BM25()
        tokens = bm25s.tokenize(list(documents), stopwords="en", show_progress=False)
        self._vocab = tokens.vocab
        self._model.index(tokens, show_progress=False)

    def _tokens(self, queries: Sequence[str]) -> list[list[int]]:
        split = bm25s.tokenize(list(queries), stopwords="en", return_ids=False, show_progress=False)
        return [[self._vocab[t] for t in words if t in self._vocab] for words in split]

    def top(self, queries: Sequence[str], k: int) -> list[np.ndarray]:
        """Indices of the `k` best documents per query, best first (fewer when fewer match)."""
        k = min(k, self.size)
        out = []
        for ids in self._tokens(queries):
            if not ids or k == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            scores = self._model.get_scores(ids)
            best = np.argpartition(-scores, k - 1)[:k]
            best = best[np.argsort(-scores[best], kind="stable")]
            out.append(best[scores[best] > 0])
        return out

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for `query`."""
        ids = self._tokens([query])[0]
        return self._model.get_scores(ids) if ids else np.zeros(self.size, dtype=np.float32)
