"""The overrides in force, in memory, for serving: cheap to look up, reloaded when the store changes.

A request costs one dict lookup when no override concerns its query. The
store's version counter is read at most every `poll_interval_s` (on the
request path, by whichever request comes first; never blocking others),
and the table is rebuilt only when it moved. Each layer maps its
entities to a snapshot's entity ids once per snapshot, so a layer of
10,000 entities costs a sorted-array search per request, not 10,000 lookups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from entrel.cache import SnapshotView
from entrel.catalog.entity import Entity, EntityType
from entrel.overrides.model import ANY_QUERY, Override
from entrel.overrides.store import OverrideStore

__all__ = ["OverrideLayer", "OverrideTable", "Overrides", "QueryOverrides"]


@dataclass(frozen=True)
class _Resolved:
    """A layer's entities in one snapshot: ids ascending, their scores, their overrides."""

    snapshot_id: str
    ids: np.ndarray
    scores: np.ndarray
    overrides: tuple[Override, ...]


class OverrideLayer:
    """The overrides of one query (or of `*`): scores by entity, and ignored types."""

    def __init__(self, entities: dict[Entity, Override], types: dict[EntityType, Override]) -> None:
        self.entities = entities
        self.types = types
        self._resolved: _Resolved | None = None

    def resolve(self, snap: SnapshotView | None) -> tuple[np.ndarray, np.ndarray, tuple[Override, ...]]:
        """(snapshot entity ids ascending, scores, overrides) of this layer's entities that `snap` holds."""
        snapshot_id = snap.snapshot_id if snap is not None else ""
        resolved = self._resolved
        if resolved is None or resolved.snapshot_id != snapshot_id:
            found = sorted((i, o) for e, o in self.entities.items() if snap is not None and (i := snap.entity_id(e)) is not None)
            resolved = _Resolved(
                snapshot_id,
                np.array([i for i, _ in found], dtype=np.int64),
                np.array([o.score for _, o in found], dtype=np.float32),
                tuple(o for _, o in found),
            )
            self._resolved = resolved  # racing requests build the same thing: no lock needed
        return resolved.ids, resolved.scores, resolved.overrides


@dataclass(frozen=True)
class QueryOverrides:
    """What applies to one query, lowest precedence first: the `*` layer, then the query's own."""

    layers: tuple[OverrideLayer, ...]


class Overrides:
    """Every override at one store version, grouped by query."""

    def __init__(self, version: int, entries: Iterable[Override]) -> None:
        self.version = version
        self.entries = sorted(entries, key=lambda o: o.key)
        grouped: dict[str, tuple[dict[Entity, Override], dict[EntityType, Override]]] = {}
        for o in self.entries:
            entities, types = grouped.setdefault(o.key.query, ({}, {}))
            if o.key.ignores_type:
                types[o.key.type] = o
            else:
                entities[o.key.entity] = o
        layers = {query: OverrideLayer(*maps) for query, maps in grouped.items()}
        star = layers.pop(ANY_QUERY, None)
        self._every: QueryOverrides | None = QueryOverrides((star,)) if star else None
        self._by_query = {q: QueryOverrides((star, layer) if star else (layer,)) for q, layer in layers.items()}

    def for_query(self, normalized_query: str) -> QueryOverrides | None:
        """The layers that apply to the query, or None when no override does (the common, free case)."""
        return self._by_query.get(normalized_query, self._every)

    def __len__(self) -> int:
        return len(self.entries)


class OverrideTable:
    """The overrides a server applies, following the shared store within `poll_interval_s`."""

    def __init__(self, store: OverrideStore, poll_interval_s: float) -> None:
        self.store = store
        self.poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._current = Overrides(*store.entries())
        self._checked = time.monotonic()

    def current(self) -> Overrides:
        """The overrides to apply to one request; looks at the store's version when the last look is old enough."""
        now = time.monotonic()
        if now - self._checked >= self.poll_interval_s and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                if self.store.version() != self._current.version:
                    self._current = Overrides(*self.store.entries())
            finally:
                self._lock.release()
        return self._current

    def refresh(self) -> Overrides:
        """Reload now (after this server changed the store, so its next request sees the change)."""
        with self._lock:
            self._current = Overrides(*self.store.entries())
            self._checked = time.monotonic()
        return self._current
