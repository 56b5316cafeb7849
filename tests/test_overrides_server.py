"""Overrides and ScoreBatch on a real server (real model, LMDB snapshot and override store, gRPC on loopback)."""

from __future__ import annotations

import json
import math
import shutil
import threading
import time

import grpc
import pytest
from snapshot_copies import republish

from entrel.cli import main
from entrel.service.client import AdminClient, ClientSecurity, RelevanceClient
from entrel.service.server import RelevanceServer
from entrel.v1 import relevance_pb2 as pb

ADMIN, READ = "admin-token-9d1e", "read-token-41c7"
QUERY = "red leather office chair"


@pytest.fixture
def override_server(served_settings, scorer, tmp_path):
    """A server over a private data folder (snapshots copied, overrides empty), admin and read tokens set."""
    shutil.copytree(served_settings.snapshot_root, tmp_path / "snapshots")
    (tmp_path / "admin.token").write_text(ADMIN)
    (tmp_path / "read.token").write_text(READ)
    settings = served_settings.replace(
        **{
            "data_dir": str(tmp_path),
            "auth.admin_token_file": str(tmp_path / "admin.token"),
            "auth.read_token_file": str(tmp_path / "read.token"),
            "server.reload_interval_s": "3600",
        }
    )
    started: list[RelevanceServer] = []

    def start() -> RelevanceServer:
        server = RelevanceServer(settings, scorer=scorer).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(grace=0)


def _admin(server: RelevanceServer, token: str | None = ADMIN) -> AdminClient:
    return AdminClient(f"127.0.0.1:{server.port}", security=ClientSecurity(token=token))


def _entity(response: pb.ScoreItemsResponse, type_: str, text: str) -> pb.EntityExplanation:
    return next(e for item in response.items for e in item.entities if (e.type, e.text) == (type_, text))


def test_an_override_is_served_within_a_second_with_no_failed_call_and_outlives_swaps_and_restarts(override_server):
    server = override_server()
    items = list(server.watcher.current().item_rows)[:30]
    with RelevanceClient(f"127.0.0.1:{server.port}") as client:
        before = client.score(QUERY, items, explain=True)
    assert before.metadata.query_cached
    target = next(e for item in before.items for e in item.entities if e.source == pb.SCORE_SOURCE_CACHED and e.score > 0.1)
    seen: list[tuple[float, bool]] = []
    failures: list[grpc.RpcError] = []
    stop = threading.Event()

    def cached_calls() -> None:
        with RelevanceClient(f"127.0.0.1:{server.port}") as loop_client:
            while not stop.is_set():
                try:
                    response = loop_client.score(QUERY, items, explain=True)
                except grpc.RpcError as exc:
                    failures.append(exc)
                    continue
                entity = _entity(response, target.type, target.text)
                seen.append((time.monotonic(), entity.source == pb.SCORE_SOURCE_OVERRIDE))

    worker = threading.Thread(target=cached_calls)
    worker.start()
    try:
        time.sleep(0.3)
        with _admin(server) as admin:
            set_at = time.monotonic()
            change = admin.set_override(QUERY, target.type, target.text, 0.0, "recalled product line")
        deadline = set_at + 2.0
        while time.monotonic() < deadline and not any(hit for _, hit in seen):
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join()
    assert failures == [], "no call failed while the override was set"
    assert change.entity_in_snapshot and not change.HasField("before")
    assert (change.after.principal, change.after.reason) == ("admin", "recalled product line")
    first_hit = min(t for t, hit in seen if hit)
    assert first_hit - set_at < 1.0
    assert not any(hit for t, hit in seen if t < set_at), "nothing overridden before it was set"

    def overridden() -> pb.EntityExplanation:
        with RelevanceClient(f"127.0.0.1:{server.port}") as client:
            return _entity(client.score(QUERY, items, explain=True), target.type, target.text)

    after = overridden()
    assert (after.score, after.source, after.override_reason) == (0.0, pb.SCORE_SOURCE_OVERRIDE, "recalled product line")
    # A newly promoted snapshot, a rollback and a restart leave it in force.
    store = server.watcher.store
    store.promote(republish(store, scale=0.9))
    with _admin(server) as admin:
        assert admin.reload().changed
        assert overridden().source == pb.SCORE_SOURCE_OVERRIDE
        assert admin.rollback().changed
    assert overridden().source == pb.SCORE_SOURCE_OVERRIDE
    server.stop(grace=0)
    server = override_server()
    assert overridden().override_reason == "recalled product line"


def _code(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_override_rpcs_refuse_bad_tokens_and_bad_input_and_a_refused_call_writes_nothing(override_server, tmp_path):
    server = override_server()
    setting = ("office chair", "color", "red", 0.2, "why not")
    for token in (None, "not-a-token"):
        with _admin(server, token) as anyone:
            assert _code(lambda a=anyone: a.set_override(*setting)) == grpc.StatusCode.UNAUTHENTICATED
            assert (
                _code(lambda a=anyone: a.delete_override("office chair", "color", "red", "x")) == grpc.StatusCode.UNAUTHENTICATED
            )
            assert _code(lambda a=anyone: a.list_overrides()) == grpc.StatusCode.UNAUTHENTICATED
    with _admin(server, READ) as reader:
        assert _code(lambda: reader.set_override(*setting)) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: reader.delete_override("office chair", "color", "red", "x")) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: reader.list_overrides()) == grpc.StatusCode.OK
    bad = [
        ("", "color", "red", 0.2, "why"),
        ("  \u200b", "color", "red", 0.2, "why"),
        ("office chair", "color", "red", math.nan, "why"),
        ("office chair", "color", "red", 1.01, "why"),
        ("office chair", "colour", "red", 0.2, "why"),
        ("office chair", "color", "red", 0.2, ""),
        ("office chair", "color", "", 0.2, "why"),
    ]
    with _admin(server) as admin:
        for args in bad:
            with pytest.raises(grpc.RpcError) as caught:
                admin.set_override(*args)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, args
        with pytest.raises(grpc.RpcError) as caught:
            admin.delete_override("office chair", "color", "red", "nothing there")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        listed = admin.list_overrides()
        assert (list(listed.overrides), listed.version) == ([], 0), "a refused call wrote"
        assert not (tmp_path / "overrides" / "audit.jsonl").exists()
        # An entity no item has is accepted, and the answer says so.
        unknown = admin.set_override("*", "brand", "Nonexistent Brand Co", 0.9, "launch next week")
        assert not unknown.entity_in_snapshot and "no item of the served snapshot" in unknown.note
        assert [(o.query, o.entity_text) for o in admin.list_overrides().overrides] == [("*", "nonexistent brand co")]


def test_cli_override_set_ls_rm(override_server, tmp_path, capsys):
    server = override_server()
    flags = [f"--address=127.0.0.1:{server.port}", f"--token-file={tmp_path / 'admin.token'}"]
    assert main(["override", "set", "Office Chair", "color", "Red", "--score", "0.1", "--reason", "seasonal", *flags]) == 0
    assert "now  'office chair'" in capsys.readouterr().out
    assert main(["override", "set", "*", "brand", "--ignore", "--reason", "brands do not matter", *flags]) == 0
    assert main(["override", "ls", f"--address=127.0.0.1:{server.port}", f"--token-file={tmp_path / 'read.token'}"]) == 0
    out = capsys.readouterr().out
    assert "color: red" in out and "brand (ignored)" in out and "2 override(s), store version 2" in out
    assert main(["override", "set", "x", "color", "red", "--score", "nan", "--reason", "r", *flags]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    assert main(["override", "rm", "office chair", "color", "red", "--reason", "season over", *flags]) == 0
    assert "now  (none)" in capsys.readouterr().out
    assert main(["override", "ls", "--json", *flags]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [o["entityType"] for o in listed["overrides"]] == ["brand"]
    audit = [json.loads(line) for line in (tmp_path / "overrides" / "audit.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in audit] == ["seasonal", "brands do not matter", "season over"]
    assert all(r["principal"] == "admin" for r in audit)


def test_score_batch_answers_each_group_as_score_items_and_refuses_past_its_limits(override_server):
    server = override_server()
    item_ids = list(server.watcher.current().item_rows)
    groups = [(QUERY, item_ids[:40]), ("running shoes", item_ids[20:60]), ("teal mesh stool for a drafting table", item_ids[:10])]
    with RelevanceClient(f"127.0.0.1:{server.port}") as client:
        batch = client.score_batch(groups, explain=True)
        alone = [client.score(query, items, explain=True) for query, items in groups]
        assert len(batch.groups) == 3
        for together, single in zip(batch.groups, alone, strict=True):
            assert [(i.item_id, i.status) for i in together.items] == [(i.item_id, i.status) for i in single.items]
            assert [i.score for i in together.items] == pytest.approx([i.score for i in single.items], abs=1e-4)
            assert together.metadata.normalized_query == single.metadata.normalized_query
            assert together.metadata.cache_hits == single.metadata.cache_hits
        assert batch.groups[2].metadata.live_scored_pairs > 0 or batch.groups[2].metadata.cache_misses == 0
        for request, limit in (
            ([("office chair", ["D0001"])] * 33, "server.max_batch_groups=32"),
            ([("office chair", ["D0001"] * 1000)] * 3, "server.max_batch_items=2000"),
            ([("office chair", ["D0001"]), ("  ", ["D0001"])], "groups[1]: query is empty"),
            ([("office chair", ["D0001"] * 1001)], "groups[0]: 1001 items requested; the limit is server.max_items"),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                client.score_batch(request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert limit in caught.value.details()
        empty_ref = pb.ScoreBatchRequest(
            groups=[pb.ScoreItemsRequest(query="chair", items=[pb.ItemRef(item_id="D0001"), pb.ItemRef()])]
        )
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = channel.unary_unary("/entrel.v1.Relevance/ScoreBatch", request_serializer=bytes, response_deserializer=bytes)
            with pytest.raises(grpc.RpcError) as caught:
                call(empty_ref.SerializeToString(), timeout=10)
        assert "groups[0].items[1] has neither item_id nor inline set" in caught.value.details()
