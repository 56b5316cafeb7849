"""Showing what entrel made of catalog items (for `entrel entities`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from entrel.cache import SnapshotError, SnapshotStore
from entrel.catalog import Entity
from entrel.config import Settings
from entrel.offline import extract

__all__ = ["item_entities"]


def _lines(item_id: str, title: str, entities: Sequence[Entity] | None) -> Iterator[str]:
    if entities is None:
        yield f"{item_id}: unknown item"
        return
    yield f"{item_id}  {title}"
    if not entities:
        yield "    (no entities)"
    for e in entities:
        yield f"    {e.type.value:<13} {e.text}"


def item_entities(settings: Settings, item_ids: Sequence[str], from_catalog: bool = False) -> Iterator[str]:
    """Lines describing each item's entities, from the served snapshot or extracted from the catalog now."""
    if from_catalog:
        catalog = extract.run(settings, progress=False)
        by_id = {item.item_id: (item.title, es) for item, es in zip(catalog.items, catalog.entities, strict=True)}
        for item_id in item_ids:
            title, entities = by_id.get(item_id, ("", None))
            yield from _lines(item_id, title, entities)
        return
    store = SnapshotStore(settings.snapshot_root)
    current = store.current_id()
    if current is None:
        raise SnapshotError(f"no snapshot promoted under {store.root}: run `entrel nightly` or use --from-catalog")
    reader = store.open(current)
    for item_id, title in zip(item_ids, reader.titles(item_ids), strict=True):
        row = reader.item_rows.get(item_id)
        entities = None if row is None else [reader.entities[i] for i in reader.item_entities[row, : reader.item_counts[row]]]
        yield from _lines(item_id, title, entities)
