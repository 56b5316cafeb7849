"""LMDB snapshots: key stability, round trip, verification, promotion, crash safety."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from entrel.cache import FORMAT_VERSION, Manifest, SnapshotError, SnapshotReader, SnapshotStore
from entrel.cache import snapshot as snapshot_module
from entrel.cache.keys import decode_row, encode_row, item_key, query_key
from entrel.catalog import Entity
from entrel.text import normalize

ENTITIES = [Entity.of("product_type", "office chair"), Entity.of("color", "red"), Entity.of("brand", "acme")]


def write_snapshot(store, rows, items=None, fingerprint="model-a", item_vectors=(), query_vectors=()):
    with store.writing(map_size_mb=64) as writer:
        writer.put_meta("vocabulary", "{}")
        writer.add_entities(ENTITIES)
        writer.add_items(items or [("D1", "Red chair", [0, 1, 2]), ("D2", "Plain", [])])
        writer.add_rows(rows)
        writer.add_item_vectors(item_vectors)
        writer.add_query_vectors(query_vectors)
        writer.finish(Manifest(writer.snapshot_id, fingerprint, "test-model", "2026-01-01T00:00:00", {}))
    return writer.snapshot_id


def test_key_encoding_is_stable():
    # Golden values: changing them breaks every existing snapshot (bump FORMAT_VERSION).
    assert FORMAT_VERSION == 2
    assert query_key(normalize("Red  Chair")) == b"q:red chair"
    assert query_key("x" * 401).startswith(b"h:") and len(query_key("x" * 401)) == 66
    assert query_key("é" * 300) == query_key("é" * 300)
    assert item_key("D0001") == b"D0001"
    row = encode_row(np.array([7, 2]), np.array([0.25, 0.5]))
    assert row.hex() == "0200000007000000" + "0000003f" + "0000803e"
    ids, scores = decode_row(row)
    assert ids.tolist() == [2, 7] and scores.tolist() == [0.5, 0.25]
    with pytest.raises(ValueError):
        item_key("")
    with pytest.raises(ValueError, match="twice"):
        encode_row(np.array([1, 1]), np.array([0.1, 0.2]))


def test_round_trip(tmp_path):
    store = SnapshotStore(tmp_path)
    sid = write_snapshot(
        store, [("red chair", np.array([1, 0]), np.array([0.9, 0.8])), ("blue chair", np.array([1]), np.array([0.1]))]
    )
    store.promote(sid)
    reader = store.open(store.current_id(), verify=True)
    assert reader.manifest.counts == {
        "entities": 3,
        "items": 2,
        "queries": 2,
        "pairs": 3,
        "item_vectors": 0,
        "query_vectors": 0,
    }
    assert reader.item_vectors(np.array([0])) is None and reader.query_vector("red chair") is None
    assert reader.manifest.model_fingerprint == "model-a"
    ids, scores = reader.row("red chair")
    assert ids.tolist() == [0, 1] and scores.tolist() == pytest.approx([0.8, 0.9])
    assert reader.row("green chair") is None
    assert reader.entities == ENTITIES
    assert reader.item_entities[reader.item_rows["D1"]].tolist() == [0, 1, 2]
    assert reader.item_counts.tolist() == [3, 0]
    # The SnapshotView the engine reads: bulk lookups in request order, -1 for what the snapshot lacks.
    positions = reader.item_positions(["D2", "nope", "D1"])
    assert positions.tolist() == [reader.item_rows["D2"], -1, reader.item_rows["D1"]]
    ids, counts = reader.item_entity_ids(positions)
    assert ids.tolist() == [[-1, -1, -1], [-1, -1, -1], [0, 1, 2]] and counts.tolist() == [0, 0, 3]
    assert reader.entity_count == 3 and reader.entity(1) == ENTITIES[1]
    assert reader.entity_id(ENTITIES[2]) == 2 and reader.entity_id(Entity.of("color", "blue")) is None
    assert reader.titles(["D2", "nope", "D1"]) == ["Plain", "", "Red chair"]
    assert sorted(reader.queries()) == ["blue chair", "red chair"]


def test_item_and_query_vectors_round_trip_in_item_order(tmp_path):
    store = SnapshotStore(tmp_path)
    rows = [("red chair", np.array([0]), np.array([0.9]))]
    unit = np.eye(4, dtype=np.float32)
    slanted = np.array([0.6, 0.8, 0, 0], dtype=np.float32)  # 0.6 and 0.8 are not float16 numbers
    sid = write_snapshot(store, rows, item_vectors=[("D2", unit[1]), ("D1", slanted)], query_vectors=[("red chair", unit[2])])
    reader = store.open(sid, verify=True)
    assert reader.manifest.counts["item_vectors"] == 2 and reader.manifest.counts["query_vectors"] == 1
    vectors = reader.item_vectors(reader.item_positions(["D1", "D2"]))
    # Stored as float16, held as float32 for serving: exactly the float16 values, widened.
    assert vectors is not None and vectors.dtype == np.float32
    assert vectors.tolist() == [slanted.astype(np.float16).astype(np.float32).tolist(), [0, 1, 0, 0]]
    assert vectors[0, 0] != np.float32(0.6)
    assert reader.query_vector("red chair").tolist() == [0, 0, 1, 0]
    assert reader.query_vector("blue chair") is None
    # One vector per item or none: a partial table is refused, not half used.
    partial = write_snapshot(SnapshotStore(tmp_path / "partial"), rows, item_vectors=[("D1", unit[0])])
    with pytest.raises(SnapshotError, match="item vectors do not match"):
        SnapshotStore(tmp_path / "partial").open(partial)


def test_hot_queries_are_kept_within_the_byte_budget_and_big_rows_read_each_time(tmp_path, monkeypatch):
    """A reader keeps the rows and vectors of recent queries (the same objects come back); a row larger than
    the whole budget is still answered, read afresh each time; the oldest query leaves when the budget is full;
    a query the snapshot lacks is never kept, so unknown queries cannot push hot ones out."""
    store = SnapshotStore(tmp_path)
    big = np.arange(3)
    long_query = "big " * 30  # its key alone outweighs a short query's whole entry
    rows = [
        ("red chair", np.array([0]), np.array([0.9])),
        (long_query, big, np.full(3, 0.5)),
        ("blue chair", np.array([1]), np.array([0.2])),
    ]
    sid = write_snapshot(store, rows, query_vectors=[("red chair", np.eye(4, dtype=np.float32)[2])])
    # An entry costs the overhead, its key, its row's bytes (8 an entity) and its vector's (2 a dimension).
    red = snapshot_module._ENTRY_OVERHEAD + sys.getsizeof("red chair") + 8 + 8
    blue = snapshot_module._ENTRY_OVERHEAD + sys.getsizeof("blue chair") + 8
    assert snapshot_module._ENTRY_OVERHEAD + sys.getsizeof(long_query) + 24 > red + 4 > blue
    monkeypatch.setattr(snapshot_module, "_HOT_QUERY_BYTES", red + 4)  # one small entry at a time; never the big row
    reader = SnapshotReader(store.root / sid)
    first = reader.row("red chair")
    assert reader.row("red chair") is first and reader.query_vector("red chair").tolist() == [0, 0, 1, 0]
    big_row = reader.row(long_query)
    assert big_row[0].tolist() == [0, 1, 2] and reader.row(long_query) is not big_row  # never kept
    for unknown in ("green chair", "pink chair", "x" * 300):
        assert reader.row(unknown) is None and reader.query_vector(unknown) is None
    assert reader.row("red chair") is first, "unknown queries took no room"
    assert reader.row("blue chair")[1].tolist() == pytest.approx([0.2])
    assert reader.row("red chair") is not first and reader.row("red chair")[1].tolist() == pytest.approx(
        [0.9]
    )  # evicted, read again


def test_corrupt_and_missing_snapshots_are_clear_errors(tmp_path):
    store = SnapshotStore(tmp_path)
    with pytest.raises(SnapshotError, match="data.mdb missing"):
        SnapshotReader(tmp_path / "nothing")
    sid = write_snapshot(store, [("q", np.array([0]), np.array([0.5]))])
    data = store.path_of(sid) / "data.mdb"
    data.write_bytes(data.read_bytes()[:4096])  # truncated: the tail pages are gone
    with pytest.raises(SnapshotError):
        store.open(sid, verify=True)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "data.mdb").write_bytes(os.urandom(20000))
    with pytest.raises(SnapshotError, match="cannot be opened|no manifest|corrupt"):
        SnapshotReader(garbage)


def test_verify_names_a_damaged_data_file_apart_from_an_unfinished_one(tmp_path):
    store = SnapshotStore(tmp_path)
    damaged = write_snapshot(store, [("q", np.array([0]), np.array([0.5]))])
    data = store.path_of(damaged) / "data.mdb"
    raw = bytearray(data.read_bytes())
    for offset in range(4096, len(raw), 4096):  # a byte flipped in every page but the meta pages
        raw[offset + 100] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError, match="fails its checksum"):
        SnapshotReader(store.path_of(damaged)).verify()
    unfinished = write_snapshot(store, [("q", np.array([0]), np.array([0.5]))])
    for name in ("manifest.json", "data.sha256"):
        (store.path_of(unfinished) / name).unlink()
    data = store.path_of(unfinished) / "data.mdb"
    raw = bytearray(data.read_bytes())
    for offset in range(4096 * 2, len(raw), 4096):
        raw[offset + 100] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError, match="no manifest"):
        SnapshotReader(store.path_of(unfinished)).verify()


def test_verify_catches_rows_outside_the_manifest(tmp_path):
    store = SnapshotStore(tmp_path)
    sid = write_snapshot(store, [("q", np.array([0, 1]), np.array([0.5, 1.5]))])
    with pytest.raises(SnapshotError, match="outside"):
        store.open(sid, verify=True)


def test_promote_rollback_prune(tmp_path):
    store = SnapshotStore(tmp_path)
    first = write_snapshot(store, [("q", np.array([0]), np.array([0.1]))])
    store.promote(first)
    second = write_snapshot(store, [("q", np.array([0]), np.array([0.2]))])
    store.promote(second)
    assert store.current_id() == second
    assert store.rollback() == first
    assert store.open(store.current_id()).row("q")[1].tolist() == pytest.approx([0.1])
    third = write_snapshot(store, [("q", np.array([0]), np.array([0.3]))])
    store.promote(third)
    removed = store.prune(keep=1)
    assert store.list_ids() == [third] and set(removed) == {first, second}
    with pytest.raises(SnapshotError, match="no such snapshot"):
        store.promote("does-not-exist")


CRASHING_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from entrel.cache import SnapshotStore
    from entrel.catalog import Entity
    store = SnapshotStore(sys.argv[1])
    def rows():
        for i in range(10**9):
            if i == 20000:
                print("halfway", flush=True)
            yield f"query {i}", np.arange(100), np.full(100, 0.5)
    with store.writing(map_size_mb=256) as writer:
        writer.add_entities([Entity.of("color", f"c{i}") for i in range(100)])
        writer.add_rows(rows())
    """
)


def test_crash_mid_write_leaves_the_promoted_snapshot_intact(tmp_path):
    store = SnapshotStore(tmp_path)
    old = write_snapshot(store, [("red chair", np.array([1]), np.array([0.9]))])
    store.promote(old)
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "halfway"
    proc.send_signal(signal.SIGKILL)  # no cleanup, no finally: a real crash
    proc.wait(timeout=30)
    assert store.current_id() == old
    assert store.list_ids() == [old]  # the half-written one is only a staging folder
    reader = store.open(old, verify=True)
    assert reader.row("red chair")[1].tolist() == pytest.approx([0.9])
    assert any(p.name.startswith(".staging-") for p in tmp_path.iterdir())
    store.prune(keep=3)
    assert not any(p.name.startswith(".staging-") for p in tmp_path.iterdir())


def test_a_failed_or_unfinished_write_publishes_nothing(tmp_path):
    store = SnapshotStore(tmp_path)
    old = write_snapshot(store, [("red chair", np.array([1]), np.array([0.9]))])
    store.promote(old)
    with pytest.raises(KeyError):
        with store.writing(map_size_mb=64) as writer:
            writer.add_entities(ENTITIES)
            raise KeyError("scoring failed")
    with pytest.raises(SnapshotError, match="not finished"):
        with store.writing(map_size_mb=64) as writer:
            writer.add_entities(ENTITIES)
    assert store.list_ids() == [old] and store.current_id() == old
    assert len(list(tmp_path.glob(".staging-*"))) == 2  # left for the next run to remove
    assert store.open(old, verify=True).row("red chair")[1].tolist() == pytest.approx([0.9])
