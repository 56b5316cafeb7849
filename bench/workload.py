"""Requests of one query x N items, built against a snapshot to hit a target cache hit rate.

A request's items are what a ranking service would send: the query's top
items by BM25 over titles alone. That is deliberately not the nightly's
retriever (titles plus entities), so a cached query's candidates are
usually, not always, all covered by its row. The planned hit rate of a
request is counted per (item, entity) lookup from the snapshot itself;
the benchmark reports it beside the rate the server measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from entrel.cache import SnapshotReader
from entrel.offline.retrieval import Bm25Index
from entrel.text import normalize

__all__ = ["BenchRequest", "Workload"]

# Words appended to cached queries to make queries the snapshot has never seen.
_UNSEEN_SUFFIXES = ("best", "cheap", "sale", "deal", "gift", "new", "top rated", "online", "buy", "for home")
# A request aimed at a partial hit rate is kept when its planned rate is this close.
_TOLERANCE = 0.03


@dataclass(frozen=True)
class BenchRequest:
    query: str
    item_ids: tuple[str, ...]
    # Share of the request's (item, entity) lookups the snapshot answers, when planned.
    planned_hit_rate: float | None = None


class Workload:
    """Builds requests over the items of `snap`."""

    def __init__(self, snap: SnapshotReader, items_per_request: int = 100, seed: int = 0) -> None:
        self.snap = snap
        self.n_items = items_per_request
        self.seed = seed
        self.item_ids = list(snap.item_rows)
        self._rows = np.array([snap.item_rows[i] for i in self.item_ids], dtype=np.int64)
        self._index = Bm25Index(snap.titles(self.item_ids))

    def ranked(self, query: str) -> np.ndarray:
        """Positions in `item_ids`, best title match first (ties, and non-matches, in catalog order)."""
        return np.argsort(-self._index.scores(query), kind="stable")

    def candidates(self, query: str) -> tuple[str, ...]:
        return tuple(self.item_ids[i] for i in self.ranked(query)[: self.n_items])

    def _lookups(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Per item: (entity lookups that miss, all entity lookups) for `query`."""
        ids = self.snap.item_entities[self._rows]
        valid = ids >= 0
        row = self.snap.row(normalize(query))
        cached = np.isin(ids, row[0]) if row is not None else np.zeros(ids.shape, dtype=bool)
        return (valid & ~cached).sum(axis=1), valid.sum(axis=1)

    def _request(self, query: str, target: float) -> BenchRequest | None:
        """`n_items` top-ranked items whose misses fit the budget of a `target` hit rate, if any."""
        misses, totals = self._lookups(query)
        ranked = self.ranked(query)
        budget = (1.0 - target) * totals[ranked[: self.n_items]].sum()
        chosen: list[int] = []
        spent = 0
        for i in ranked:
            if spent + misses[i] <= budget:
                chosen.append(int(i))
                spent += int(misses[i])
                if len(chosen) == self.n_items:
                    break
        total = int(totals[chosen].sum())
        planned = 1.0 - spent / total if total else 1.0
        if len(chosen) < self.n_items or abs(planned - target) > _TOLERANCE:
            return None
        return BenchRequest(query, tuple(self.item_ids[i] for i in chosen), round(planned, 4))

    def at_hit_rate(self, target: float, n: int) -> list[BenchRequest]:
        """Up to `n` requests with about `target` of their lookups cached (0: queries never precomputed)."""
        queries = self.snap.queries()
        np.random.default_rng(self.seed).shuffle(queries)
        if math.isclose(target, 0.0):
            queries = self._unseen(queries, n)
        out = []
        for query in queries:
            if (request := self._request(query, target)) is not None:
                out.append(request)
                if len(out) == n:
                    break
        return out

    def _unseen(self, cached: list[str], n: int) -> list[str]:
        """`n` variants of cached queries that have no row in the snapshot."""
        out: list[str] = []
        for suffix in _UNSEEN_SUFFIXES:
            for query in cached:
                variant = f"{query} {suffix}"
                if self.snap.row(normalize(variant)) is None:
                    out.append(variant)
                    if len(out) == n:
                        return out
        return out
