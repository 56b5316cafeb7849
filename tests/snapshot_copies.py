"""Test helper: publish a copy of the promoted snapshot, to exercise reload, rollback and refusal."""

from __future__ import annotations

from entrel.cache import Manifest, SnapshotStore


def republish(store: SnapshotStore, scale: float = 1.0, fingerprint: str | None = None) -> str:
    """A new snapshot (published, not promoted) with the promoted one's tables and every score times `scale`."""
    reader = store.open(store.current_id())
    with store.writing(map_size_mb=256) as writer:
        writer.put_meta("vocabulary", reader.vocabulary_json)
        writer.add_entities(reader.entities)
        titles = reader.titles(list(reader.item_rows))
        writer.add_items(
            (item_id, title, reader.item_entities[row, : reader.item_counts[row]].tolist())
            for (item_id, row), title in zip(reader.item_rows.items(), titles, strict=True)
        )
        writer.add_rows((q, ids, scores * scale) for q in reader.queries() for ids, scores in [reader.row(q)])
        writer.finish(Manifest(writer.snapshot_id, fingerprint or reader.manifest.model_fingerprint, "test", "now", {}))
    return writer.snapshot_id
