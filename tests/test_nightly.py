"""The nightly job: what it writes, what it refuses, and that misses become hits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrel.cache import SnapshotStore
from entrel.offline import nightly
from entrel.offline.nightly import NightlyError
from entrel.service.requests import ItemRequest
from entrel.service.server import RelevanceServer


def test_nightly_report_and_snapshot(served_settings):
    store = SnapshotStore(served_settings.snapshot_root)
    reader = store.open(store.current_id(), verify=True)
    counts = reader.manifest.counts
    assert counts["items"] > 50 and counts["entities"] > 50 and counts["queries"] > 20 and counts["pairs"] > 1000
    # The similarity term is on by default: a vector for every item and every precomputed query.
    assert counts["item_vectors"] == counts["items"] and counts["query_vectors"] == counts["queries"]
    reports = list((Path(served_settings.data_dir) / "reports").glob("nightly-*.json"))
    report = json.loads(reports[0].read_text())
    assert report["snapshot_id"] == store.current_id()
    assert report["counts"] == counts and report["traffic_coverage"] == 1.0
    assert report["snapshot_bytes"] > 0 and report["pairs_per_second"] > 0


def test_live_misses_become_hits_after_the_next_nightly_run(served_settings, scorer, tmp_path):
    settings = served_settings.replace(data_dir=str(tmp_path), **{"server.batch_wait_ms": 0.5})
    first = nightly.run(settings, scorer=scorer, progress=False)
    assert first.item_vectors["reused"] == 0 and first.item_vectors["encoded"] > 0
    query = "burgundy leather chair for my study"
    server = RelevanceServer(settings, scorer=scorer).start()
    try:
        items = [ItemRequest(i) for i in list(server.watcher.current().item_rows)[:30]]
        before = server.engine.score(query, items)
        assert not before.query_cached and before.cache_hits == 0 and before.live_scored_pairs > 0
        assert not before.query_vector_cached and before.similarity_weight > 0
    finally:
        server.stop(grace=0)  # flushes the miss log
    second = nightly.run(settings, scorer=scorer, progress=False)
    # The catalog did not change: every item's vector comes from the first run's.
    assert second.item_vectors == {"reused": second.counts["items"], "encoded": 0}
    server = RelevanceServer(settings, scorer=scorer).start()
    try:
        after = server.engine.score(query, items)
        assert after.query_cached and after.cache_misses == 0 and after.live_scored_pairs == 0
        assert after.query_vector_cached
        assert [i.score for i in after.items] == pytest.approx([i.score for i in before.items], abs=1e-4)
    finally:
        server.stop(grace=0)


def test_one_nightly_run_at_a_time(served_settings, scorer, tmp_path):
    settings = served_settings.replace(data_dir=str(tmp_path))
    (tmp_path / "snapshots").mkdir()
    import fcntl

    with open(tmp_path / "snapshots" / ".nightly.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(NightlyError, match="another nightly run"):
            nightly.run(settings, scorer=scorer, progress=False)


def test_killed_nightly_run_leaves_the_served_snapshot_untouched(served_settings, tmp_path):
    import shutil

    shutil.copytree(served_settings.snapshot_root, tmp_path / "snapshots")
    store = SnapshotStore(tmp_path / "snapshots")
    before = store.current_id()
    command = [
        sys.executable,
        "-m",
        "entrel.cli",
        f"--set=data_dir={tmp_path}",
        f"--set=model.name_or_path={served_settings.model.name_or_path}",
        f"--set=catalog.path={served_settings.catalog.path}",
        f"--set=nightly.query_log={served_settings.nightly.query_log}",
        "--set=nightly.candidates=all",
        "nightly",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".staging-") for p in store.root.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "nightly never started writing"
        time.sleep(0.05)
    time.sleep(0.5)  # let it write some rows
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert store.current_id() == before
    assert store.list_ids() == [before]
    store.open(before, verify=True)


def test_a_killed_runs_staging_folder_goes_when_the_next_run_starts(served_settings, tmp_path):
    from entrel.scoring.cross_encoder import ModelNotFoundError

    stale = tmp_path / "snapshots" / ".staging-20260101T000000000000Z-dead00"
    stale.mkdir(parents=True)
    (stale / "data.mdb").write_bytes(b"half a snapshot")
    # This run fails when it loads the model, before it writes or prunes anything.
    settings = served_settings.replace(data_dir=str(tmp_path), **{"model.name_or_path": str(tmp_path / "no-model")})
    with pytest.raises(ModelNotFoundError):
        nightly.run(settings, progress=False)
    assert not stale.exists()
