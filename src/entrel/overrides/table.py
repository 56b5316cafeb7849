"""The overrides in force, in memory, for serving: cheap to look up, reloaded when the store changes.

A request costs one dict lookup when no override concerns its query. The
store's version counter is read at most every `poll_interval_s` (on the
request path, by whichever request comes first; never blocking others),
and the table is rebuilt, on a thread of its own, only when it moved. A query's overrides (its own
and `*`'s) are mapped to a snapshot's entity ids once per snapshot, on
first use, so even thousands of them cost one sorted-array search per
request, not a lookup each.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Resolved:
    """A layer's entities in one snapshot: ids ascending, their scores, their overrides."""

    snapshot_id: str
    ids: np.ndarray
    scores: np.ndarray
    overrides: tuple[Override, ...]


def _resolved(snapshot_id: str, found: Iterable[tuple[int, Override]]) -> _Resolved:
    ordered = sorted(found, key=lambda pair: pair[0])
    return _Resolved(
        snapshot_id,
        # The dtype of the engine's entity-id matrix: lookups then compare without converting it.
        np.array([i for i, _ in ordered], dtype=np.int32),
        np.array([o.score for _, o in ordered], dtype=np.float32),
        tuple(o for _, o in ordered),
    )


class OverrideLayer:
    """The overrides of one query (or of `*`): scores by entity, and ignored types."""

    def __init__(self, entities: dict[Entity, Override], types: dict[EntityType, Override]) -> None:
        self.entities = entities
        self.types = types
        self._resolved: _Resolved | None = None

    def resolve(self, snap: SnapshotView | None) -> _Resolved:
        """This layer's entities that `snap` holds, by snapshot entity id (built once per snapshot)."""
        snapshot_id = snap.snapshot_id if snap is not None else ""
        resolved = self._resolved
        if resolved is None or resolved.snapshot_id != snapshot_id:
            found = [(i, o) for e, o in self.entities.items() if snap is not None and (i := snap.entity_id(e)) is not None]
            resolved = self._resolved = _resolved(snapshot_id, found)  # racing requests build the same: no lock needed
        return resolved


class QueryOverrides:
    """What applies to one query: the `*` layer and the query's own, merged so a request applies them in one pass.

    Precedence: the query's own entity, its own ignored type, `*`'s entity,
    `*`'s ignored type. So ignored types apply first and entity scores after
    them, and a `*` entity of a type the query ignores is left out.
    """

    def __init__(self, star: OverrideLayer | None, own: OverrideLayer | None) -> None:
        self._star, self._own = star, own
        self.types = {**(star.types if star else {}), **(own.types if own else {})}
        self._resolved: _Resolved | None = None

    def entity(self, entity: Entity) -> Override | None:
        """The score override that applies to `entity`, if any (for entities the snapshot lacks)."""
        if self._own is not None and entity in self._own.entities:
            return self._own.entities[entity]
        if self._star is not None and (self._own is None or entity.type not in self._own.types):
            return self._star.entities.get(entity)
        return None

    def resolve(self, snap: SnapshotView | None) -> tuple[np.ndarray, np.ndarray, tuple[Override, ...]]:
        """(snapshot entity ids ascending, scores, overrides) of every entity score override that applies."""
        if self._star is None or self._own is None:
            layer = self._star or self._own
            assert layer is not None, "built with at least one layer"
            resolved = layer.resolve(snap)
        else:
            snapshot_id = snap.snapshot_id if snap is not None else ""
            merged = self._resolved
            if merged is None or merged.snapshot_id != snapshot_id:
                star, own = self._star.resolve(snap), self._own.resolve(snap)
                taken = set(own.ids.tolist())
                kept = [
                    (i, o)
                    for i, o in zip(star.ids.tolist(), star.overrides, strict=True)
                    if i not in taken and o.key.type not in self._own.types
                ]
                merged = self._resolved = _resolved(snapshot_id, [*kept, *zip(own.ids.tolist(), own.overrides, strict=True)])
            resolved = merged
        return resolved.ids, resolved.scores, resolved.overrides


class Overrides:
    """Every override at one store version, grouped by query."""

    def __init__(self, version: int, entries: Iterable[Override]) -> None:
        self.version = version
        grouped: dict[str, tuple[dict[Entity, Override], dict[EntityType, Override]]] = {}
        for o in entries:
            entities, types = grouped.setdefault(o.key.query, ({}, {}))
            if o.key.ignores_type:
                types[o.key.type] = o
            else:
                entities[o.key.entity] = o
        layers = {query: OverrideLayer(*maps) for query, maps in grouped.items()}
        star = layers.pop(ANY_QUERY, None)
        self._every: QueryOverrides | None = QueryOverrides(star, None) if star else None
        self._by_query = {q: QueryOverrides(star, layer) for q, layer in layers.items()}

    def for_query(self, normalized_query: str) -> QueryOverrides | None:
        """The layers that apply to the query, or None when no override does (the common, free case)."""
        return self._by_query.get(normalized_query, self._every)


class OverrideTable:
    """The overrides a server applies, following the shared store within `poll_interval_s`."""

    def __init__(self, store: OverrideStore, poll_interval_s: float) -> None:
        self.store = store
        self.poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._current = Overrides(*store.entries())
        self._checked = time.monotonic()

    def current(self) -> Overrides:
        """The overrides to apply to one request; looks at the store's version when the last look is old enough.

        A change found is loaded on a thread of its own (10,000 overrides take
        a few hundred milliseconds on a busy CPU): requests meanwhile get the
        overrides in force until then, never a wait.
        """
        now = time.monotonic()
        if now - self._checked >= self.poll_interval_s and self._lock.acquire(blocking=False):
            self._checked = now
            if self.store.version() == self._current.version:
                self._lock.release()
            else:
                threading.Thread(target=self._reload_and_unlock, name="entrel-overrides", daemon=True).start()
        return self._current

    def _reload_and_unlock(self) -> None:
        """Load the store's overrides, then release the lock `current` took (a Lock may be released by any thread)."""
        try:
            self._current = Overrides(*self.store.entries())
        except Exception:  # a damaged store: keep serving what was loaded, and say so
            log.exception("overrides could not be reloaded; serving the previous ones", extra={"store": str(self.store.path)})
        finally:
            self._checked = time.monotonic()
            self._lock.release()

    def refresh(self) -> Overrides:
        """Reload now (after this server changed the store, so its next request sees the change)."""
        with self._lock:
            self._current = Overrides(*self.store.entries())
            self._checked = time.monotonic()
        return self._current
