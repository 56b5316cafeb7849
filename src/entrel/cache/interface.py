"""What serving reads from a snapshot: the narrow interface the engine depends on.

The engine sees a snapshot only through :class:`SnapshotView`, so its tests
can drive it with an in-memory snapshot and the LMDB layout can change
without touching the engine. Bulk lookups take and return numpy arrays:
a request gathers all its items at once, never item by item in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from entrel.catalog.entity import Entity

__all__ = ["SnapshotView"]


class SnapshotView(Protocol):
    """A read-only snapshot as serving needs it; :class:`~entrel.cache.SnapshotReader` is the real one.

    Items are addressed by their position in the snapshot's item tables (from
    :meth:`item_positions`, -1 for an item the snapshot lacks); entities by
    ids ``0 .. entity_count - 1``.
    """

    @property
    def snapshot_id(self) -> str: ...

    @property
    def vocabulary_json(self) -> str:
        """The extraction vocabulary learned from the catalog ('' when none was stored)."""
        ...

    @property
    def entity_count(self) -> int: ...

    @property
    def similarity_source(self) -> str:
        """How the item vectors were made (``similarity.source``: "item_text", or "entities" for bags of entity
        vectors); inline items are encoded the same way, whatever the server's own setting says."""
        ...

    def row(self, normalized_query: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The query's cached (entity ids ascending, scores), or None when it was not precomputed."""
        ...

    def query_vector(self, normalized_query: str) -> np.ndarray | None:
        """The query's precomputed unit vector, or None."""
        ...

    def item_positions(self, item_ids: Sequence[str]) -> np.ndarray:
        """Position of each item in the item tables (int64), -1 for items not in the snapshot."""
        ...

    def item_entity_ids(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(entity ids padded with -1 (items x width, int32), entity count per item (int32)); -1 positions are empty."""
        ...

    def item_vectors(self, positions: np.ndarray) -> np.ndarray | None:
        """Unit vectors (float32) of the items at `positions` (all >= 0); None, for any positions (none too), when the
        snapshot holds no item vectors."""
        ...

    def entity(self, entity_id: int) -> Entity: ...

    def entity_id(self, entity: Entity) -> int | None:
        """The entity's id in this snapshot, or None when it has none."""
        ...

    def titles(self, item_ids: Sequence[str]) -> list[str]:
        """Titles of known items, '' for the rest."""
        ...
