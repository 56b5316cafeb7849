"""The Admin service on a real server: status figures, Reload before the next poll, Rollback, and the CLI."""

from __future__ import annotations

import shutil
import threading
import time

import grpc
import pytest
from snapshot_copies import republish

from entrel.cli import main
from entrel.service.client import AdminClient, ClientSecurity, RelevanceClient
from entrel.service.server import RelevanceServer

TOKEN = "admin-token-for-tests"
QUERY = "red leather office chair"


@pytest.fixture
def admin_server(served_settings, scorer, tmp_path):
    """A server with Admin on its own port, over a private snapshot folder, that never polls by itself."""
    shutil.copytree(served_settings.snapshot_root, tmp_path / "snapshots")
    (tmp_path / "admin.token").write_text(TOKEN)
    settings = served_settings.replace(
        **{
            "data_dir": str(tmp_path),
            "auth.admin_token_file": str(tmp_path / "admin.token"),
            "server.admin_address": "127.0.0.1:0",
            "server.reload_interval_s": "3600",
        }
    )
    server = RelevanceServer(settings, scorer=scorer).start()
    yield server
    server.stop(grace=0)


def _admin(server: RelevanceServer) -> AdminClient:
    return AdminClient(f"127.0.0.1:{server.admin_port}", security=ClientSecurity(token=TOKEN))


def test_status_reports_snapshot_model_hit_rate_requests_and_uptime(admin_server):
    items = list(admin_server.watcher.current().item_rows)[:20]
    with _admin(admin_server) as admin, RelevanceClient(f"127.0.0.1:{admin_server.port}") as client:
        before = admin.status()
        assert before.snapshot_id == before.promoted_snapshot_id == admin_server.watcher.store.current_id()
        assert before.model_fingerprint == admin_server.scorer.fingerprint
        assert before.serving and before.queue_depth == 0
        assert (before.requests, before.cache_hits, before.cache_misses, before.hit_rate) == (0, 0, 0, 0.0)
        cached = client.score(QUERY, items).metadata
        live = client.score("teal mesh stool for a drafting table", items).metadata
        with pytest.raises(grpc.RpcError):
            client.score("", items)  # refused: counted as a call, looks nothing up
        time.sleep(0.05)
        after = admin.status()
    hits, misses = cached.cache_hits + live.cache_hits, cached.cache_misses + live.cache_misses
    assert cached.cache_hits > 0 and live.cache_misses > 0
    assert (after.requests, after.cache_hits, after.cache_misses) == (3, hits, misses)
    assert after.hit_rate == pytest.approx(hits / (hits + misses))
    assert after.uptime_s > before.uptime_s > 0


def test_status_shows_the_live_queue_while_misses_are_scored(admin_server):
    """The admin port has its own threads, so status answers while a big live request is being scored."""
    items = list(admin_server.watcher.current().item_rows)[:200]
    done = threading.Event()

    def score_live() -> None:
        with RelevanceClient(f"127.0.0.1:{admin_server.port}", timeout_s=60) as client:
            client.score("vintage walnut chair for a reading nook", items, timeout_s=60)
        done.set()

    worker = threading.Thread(target=score_live)
    worker.start()
    depths = []
    with _admin(admin_server) as admin:
        while not done.is_set():
            depths.append(admin.status().queue_depth)
            time.sleep(0.005)
        worker.join()
        assert admin.status().queue_depth == 0
    assert max(depths) > 0, depths


def test_reload_serves_a_newly_promoted_snapshot_before_the_next_poll_and_rollback_returns(admin_server):
    store = admin_server.watcher.store
    first = store.current_id()
    second = republish(store)
    store.promote(second)
    with _admin(admin_server) as admin, RelevanceClient(f"127.0.0.1:{admin_server.port}") as client:
        status = admin.status()
        assert (status.snapshot_id, status.promoted_snapshot_id) == (first, second), "no poll for an hour"
        change = admin.reload()
        assert (change.previous_snapshot_id, change.snapshot_id, change.promoted_snapshot_id, change.changed) == (
            first,
            second,
            second,
            True,
        )
        assert client.score(QUERY, ["D0001"]).metadata.snapshot_id == second
        assert not admin.reload().changed, "reloading the served snapshot is a no-op"
        back = admin.rollback()
        assert (back.previous_snapshot_id, back.snapshot_id, back.promoted_snapshot_id, back.changed) == (
            second,
            first,
            first,
            True,
        )
        assert store.current_id() == first
        assert client.score(QUERY, ["D0001"]).metadata.snapshot_id == first


def test_rollback_with_nothing_earlier_is_failed_precondition_and_changes_nothing(admin_server):
    store = admin_server.watcher.store
    current = store.current_id()
    with _admin(admin_server) as admin:
        with pytest.raises(grpc.RpcError) as caught:
            admin.rollback()
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no earlier valid snapshot" in caught.value.details()
        assert admin.status().snapshot_id == current == store.current_id()


def test_cli_status_and_admin_commands(admin_server, capsys, tmp_path):
    store = admin_server.watcher.store
    first = store.current_id()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    flags = [f"--address=127.0.0.1:{admin_server.admin_port}", f"--token-file={token}"]
    assert main(["status", *flags]) == 0
    out = capsys.readouterr().out
    assert first in out and admin_server.scorer.fingerprint in out and "hit rate" in out and "queue depth" in out
    assert main(["status", "--json", *flags]) == 0
    assert f'"snapshotId": "{first}"' in capsys.readouterr().out
    second = republish(store)
    store.promote(second)
    assert main(["admin", "reload", *flags]) == 0
    assert f"serving {second} (was {first})" in capsys.readouterr().out
    assert main(["admin", "rollback", *flags]) == 0
    assert f"serving {first} (was {second})" in capsys.readouterr().out
    # The admin address comes from server.admin_address when --address is not given.
    assert main([f"--set=server.admin_address=127.0.0.1:{admin_server.admin_port}", "status", f"--token-file={token}"]) == 0
