"""Test doubles for the engine and the batcher: an in-memory snapshot, a scripted scorer, a fixed encoder,
and engines built over them.

They stand in for LMDB and the models so the serving logic can be tested in
milliseconds; the end-to-end tests keep the real parts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from entrel.catalog import Entity
from entrel.config import load_settings
from entrel.service.batcher import MicroBatcher
from entrel.service.engine import RelevanceEngine

# The office-chair world the engine tests score in.
QUERY = "red office chair"
CHAIR = Entity.of("product_type", "office chair")
RED = Entity.of("color", "red")
BLUE = Entity.of("color", "blue")
ACME = Entity.of("brand", "acme")
MESH = Entity.of("material", "mesh")


class MemorySnapshot:
    """A SnapshotView over plain dicts, built item by item in Python (an oracle independent of the LMDB reader).

    `items`: item id -> (title, entities); `rows`: normalised query -> {entity: cached score}.
    """

    def __init__(
        self,
        items: Mapping[str, tuple[str, Sequence[Entity]]],
        rows: Mapping[str, Mapping[Entity, float]],
        item_vectors: Mapping[str, Sequence[float]] | None = None,
        query_vectors: Mapping[str, Sequence[float]] | None = None,
        snapshot_id: str = "memory",
        similarity_source: str = "item_text",
    ) -> None:
        self.snapshot_id = snapshot_id
        self.similarity_source = similarity_source
        self.vocabulary_json = ""
        entities = [e for _, es in items.values() for e in es] + [e for row in rows.values() for e in row]
        self._entities = list(dict.fromkeys(entities))
        self._ids = {e: i for i, e in enumerate(self._entities)}
        self._item_ids = list(items)
        self._items = dict(items)
        self._rows = rows
        self._item_vectors = item_vectors
        self._query_vectors = query_vectors or {}

    @property
    def entity_count(self) -> int:
        return len(self._entities)

    def row(self, normalized_query: str) -> tuple[np.ndarray, np.ndarray] | None:
        if normalized_query not in self._rows:
            return None
        pairs = sorted((self._ids[e], s) for e, s in self._rows[normalized_query].items())
        return np.array([i for i, _ in pairs], dtype=np.uint32), np.array([s for _, s in pairs], dtype=np.float32)

    def query_vector(self, normalized_query: str) -> np.ndarray | None:
        vector = self._query_vectors.get(normalized_query)
        return None if vector is None else np.asarray(vector, dtype=np.float16)

    def item_positions(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.array([self._item_ids.index(i) if i in self._items else -1 for i in item_ids], dtype=np.int64)

    def item_entity_ids(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lists = [[self._ids[e] for e in self._items[self._item_ids[p]][1]] if p >= 0 else [] for p in positions.tolist()]
        ids = np.full((len(lists), max(map(len, lists), default=0)), -1, dtype=np.int32)
        for row, entity_ids in enumerate(lists):
            ids[row, : len(entity_ids)] = entity_ids
        return ids, np.array([len(x) for x in lists], dtype=np.int32)

    def item_vectors(self, positions: np.ndarray) -> np.ndarray | None:
        if self._item_vectors is None:
            return None
        # Stored as float16 and served widened to float32, as the snapshot reader does.
        return np.array([self._item_vectors[self._item_ids[p]] for p in positions.tolist()], dtype=np.float16).astype(np.float32)

    def entity(self, entity_id: int) -> Entity:
        return self._entities[entity_id]

    def entity_id(self, entity: Entity) -> int | None:
        return self._ids.get(entity)

    def titles(self, item_ids: Sequence[str]) -> list[str]:
        return [self._items[i][0] if i in self._items else "" for i in item_ids]


class FixedSnapshot:
    """A SnapshotSource that always hands out the same snapshot (or none)."""

    def __init__(self, snapshot: MemorySnapshot | None) -> None:
        self.snapshot = snapshot

    def current(self) -> MemorySnapshot | None:
        return self.snapshot


class ScriptedScorer:
    """A deterministic Scorer: the scripted score of each (query, rendered entity), `default` otherwise.

    Records every batch it is asked to score; while `gate` is cleared it blocks
    (to hold pairs in flight or past a deadline).
    """

    fingerprint = "scripted-scorer"

    def __init__(self, scores: Mapping[tuple[str, str], float] | None = None, default: float = 0.5) -> None:
        self.scores = dict(scores or {})
        self.default = default
        self.batches: list[list[tuple[str, str]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every pair scored, in order, across batches."""
        with self._lock:
            return [p for batch in self.batches for p in batch]

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.gate.wait()
        with self._lock:
            self.batches.append(list(pairs))
        return np.array([self.scores.get(p, self.default) for p in pairs], dtype=np.float32)


class FixedEncoder:
    """A TextEncoder with given query vectors (unit length); counts the live query encodings."""

    def __init__(self, queries: Mapping[str, Sequence[float]]) -> None:
        self.queries = queries
        self.encoded: list[str] = []

    def encode_query(self, normalized_query: str, until: float) -> np.ndarray:
        self.encoded.append(normalized_query)
        return np.asarray(self.queries[normalized_query], dtype=np.float16)

    def encode_by(self, texts: Sequence[str], until: float) -> np.ndarray:
        raise AssertionError("inline items are not used in these tests")


class Engines:
    """Builds engines over an in-memory snapshot with a scripted scorer and the real MicroBatcher;
    `close` opens the scorers' gates and stops the batchers (a test may leave a scorer held)."""

    def __init__(self) -> None:
        self._made: list[tuple[ScriptedScorer, MicroBatcher]] = []

    def make(
        self,
        snapshot: MemorySnapshot | None,
        live: Mapping[tuple[str, str], float],
        config: Sequence[str] = (),
        **engine_options: Any,
    ) -> tuple[RelevanceEngine, ScriptedScorer]:
        """An engine serving `snapshot` (None: no snapshot), its misses scored as `live` says; `config` as --set."""
        scorer = ScriptedScorer(live)
        batcher = MicroBatcher(scorer, max_batch_pairs=64, max_wait_s=0.001, capacity=1000)
        self._made.append((scorer, batcher))
        settings = load_settings(overrides=list(config))
        return RelevanceEngine(settings, scorer.fingerprint, FixedSnapshot(snapshot), batcher, **engine_options), scorer

    def close(self) -> None:
        for scorer, batcher in self._made:
            scorer.gate.set()
            batcher.close()
