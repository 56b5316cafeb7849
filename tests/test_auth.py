"""Bearer tokens: the access rules on their own, then every Admin method and scoring on a real loopback server."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from entrel.cli import main
from entrel.config import ConfigError, load_settings
from entrel.service.access import (
    READ_ONLY_ADMIN_METHODS,
    Access,
    AccessPolicy,
    PermissionDenied,
    Tokens,
    Unauthenticated,
)
from entrel.service.client import AdminClient, ClientSecurity, RelevanceClient
from entrel.service.server import RelevanceServer
from entrel.v1 import admin_pb2

ADMIN, READ, SCORE = "admin-token-1f9c", "read-token-77ab", "score-token-05e2"
ADMIN_METHODS = [m.name for m in admin_pb2.DESCRIPTOR.services_by_name["Admin"].methods]
CHANGING = [m for m in ADMIN_METHODS if m not in READ_ONLY_ADMIN_METHODS]


def test_every_admin_method_needs_a_token_and_only_status_and_listing_are_read_only():
    policy = AccessPolicy(Tokens.of(admin=ADMIN, read=READ))
    assert {"GetStatus", "Reload", "Rollback", "SetOverride", "DeleteOverride", "ListOverrides"} <= set(ADMIN_METHODS)
    assert READ_ONLY_ADMIN_METHODS == {"GetStatus", "ListOverrides"}
    for method in ADMIN_METHODS:
        assert policy.required(f"/entrel.v1.Admin/{method}") == (
            Access.READ if method in ("GetStatus", "ListOverrides") else Access.ADMIN
        )
    # A method added later and not declared read-only needs the admin token.
    assert policy.required("/entrel.v1.Admin/SomethingNew") == Access.ADMIN
    assert policy.required("/entrel.v1.Relevance/ScoreItems") == Access.OPEN, "scoring stays open by default"
    scored = AccessPolicy(Tokens.of(score=SCORE))
    assert scored.required("/entrel.v1.Relevance/ScoreItems") == Access.SCORE
    assert scored.required("/grpc.health.v1.Health/Check") == Access.OPEN, "probes need no token"


@pytest.mark.parametrize(
    ("method", "authorization", "error", "message"),
    [
        ("Reload", None, Unauthenticated, "missing bearer token"),
        ("Reload", f"Bearer {ADMIN}x", Unauthenticated, "invalid bearer token"),
        ("Reload", f"Bearer {ADMIN[:-1]}", Unauthenticated, "invalid bearer token"),
        ("Reload", ADMIN, Unauthenticated, "must be 'Bearer <token>'"),
        ("Reload", "Bearer ", Unauthenticated, "must be 'Bearer <token>'"),
        ("Reload", f"Basic {ADMIN}", Unauthenticated, "must be 'Bearer <token>'"),
        ("Reload", f"Bearer {READ}", PermissionDenied, "read-only"),
        ("GetStatus", f"Bearer {SCORE}", Unauthenticated, "invalid bearer token"),
    ],
)
def test_bad_or_insufficient_tokens_are_refused(method, authorization, error, message):
    policy = AccessPolicy(Tokens.of(admin=ADMIN, read=READ))
    with pytest.raises(error, match=message):
        policy.check(f"/entrel.v1.Admin/{method}", authorization)


def test_the_principal_is_the_role_of_the_token():
    policy = AccessPolicy(Tokens.of(admin=ADMIN, read=READ, score=SCORE))
    assert [policy.principal(f"Bearer {t}") for t in (ADMIN, READ, SCORE)] == ["admin", "read", "score"]
    assert [policy.principal(a) for a in (None, "Bearer nope", ADMIN)] == ["anonymous"] * 3


def test_good_tokens_pass_and_the_scheme_is_case_insensitive():
    policy = AccessPolicy(Tokens.of(admin=ADMIN, read=READ, score=SCORE))
    policy.check("/entrel.v1.Admin/Reload", f"Bearer {ADMIN}")
    policy.check("/entrel.v1.Admin/Reload", f"bearer {ADMIN}")
    policy.check("/entrel.v1.Admin/GetStatus", f"Bearer {READ}")
    for token in (ADMIN, READ, SCORE):
        policy.check("/entrel.v1.Relevance/ScoreItems", f"Bearer {token}")
    with pytest.raises(PermissionDenied):
        policy.check("/entrel.v1.Admin/GetStatus", f"Bearer {SCORE}")


def test_admin_calls_are_refused_when_no_admin_token_is_configured():
    with pytest.raises(Unauthenticated, match="auth.admin_token"):
        AccessPolicy(Tokens()).check("/entrel.v1.Admin/Rollback", "Bearer anything")
    with pytest.raises(Unauthenticated, match="no token is configured"):
        AccessPolicy(Tokens.of(read=READ)).check("/entrel.v1.Admin/Reload", f"Bearer {READ}")


def test_tokens_come_from_a_file_or_a_variable_and_bad_sources_are_configuration_errors(tmp_path, monkeypatch):
    (tmp_path / "admin.token").write_text(f"  {ADMIN}\n")
    monkeypatch.setenv("ENTREL_TEST_READ_TOKEN", READ)
    auth = load_settings(
        overrides=[f"auth.admin_token_file={tmp_path / 'admin.token'}", "auth.read_token_env=ENTREL_TEST_READ_TOKEN"]
    ).auth
    policy = AccessPolicy(Tokens.from_settings(auth))
    assert policy.granted(ADMIN) == Access.ADMIN and policy.granted(READ) == Access.READ
    assert policy.granted(f"  {ADMIN}\n") == Access.OPEN, "the file's whitespace is dropped, the token compared exactly"
    with pytest.raises(ConfigError, match="auth.admin_token_file: cannot read"):
        Tokens.from_settings(load_settings(overrides=[f"auth.admin_token_file={tmp_path / 'missing'}"]).auth)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="auth.score_token_file: .* is empty"):
        Tokens.from_settings(load_settings(overrides=[f"auth.score_token_file={tmp_path / 'empty'}"]).auth)
    with pytest.raises(ConfigError, match="auth.read_token_env: the environment variable NOT_SET_ANYWHERE"):
        Tokens.from_settings(load_settings(overrides=["auth.read_token_env=NOT_SET_ANYWHERE"]).auth)
    with pytest.raises(ConfigError, match="admin_token_file or admin_token_env, not both"):
        load_settings(overrides=[f"auth.admin_token_file={tmp_path / 'admin.token'}", "auth.admin_token_env=X"])


@pytest.fixture
def token_files(tmp_path):
    paths = {}
    for name, token in (("admin", ADMIN), ("read", READ), ("score", SCORE)):
        paths[name] = tmp_path / f"{name}.token"
        paths[name].write_text(token + "\n")
    return paths


@pytest.fixture
def start_server(served_settings, scorer, tmp_path):
    """Real servers over a private copy of the snapshot folder (rollback rewrites CURRENT); stopped at the end."""
    import shutil

    shutil.copytree(served_settings.snapshot_root, tmp_path / "snapshots")
    started: list[RelevanceServer] = []

    def start(**changes: str) -> RelevanceServer:
        server = RelevanceServer(served_settings.replace(data_dir=str(tmp_path), **changes), scorer=scorer).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(grace=0)


def _call(port: int, method: str, token: str | None) -> grpc.StatusCode:
    """Call Admin/`method` with an empty request (valid for every method); OK or the refusal's status."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/entrel.v1.Admin/{method}", request_serializer=bytes, response_deserializer=bytes)
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            call(b"", timeout=30, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_every_admin_rpc_is_refused_without_a_valid_token_and_a_refused_call_changes_nothing(
    start_server, token_files, monkeypatch
):
    monkeypatch.setenv("ENTREL_TEST_READ_TOKEN", READ)
    server = start_server(**{"auth.admin_token_file": str(token_files["admin"]), "auth.read_token_env": "ENTREL_TEST_READ_TOKEN"})
    store = server.watcher.store
    pointer, history = store.pointer.read_text(), (store.root / "HISTORY").read_text()
    for method in ADMIN_METHODS:
        assert _call(server.port, method, None) == grpc.StatusCode.UNAUTHENTICATED, method
        assert _call(server.port, method, "not-a-token") == grpc.StatusCode.UNAUTHENTICATED, method
        assert _call(server.port, method, SCORE) == grpc.StatusCode.UNAUTHENTICATED, f"{method}: no score token here"
    for method in CHANGING:
        assert _call(server.port, method, READ) == grpc.StatusCode.PERMISSION_DENIED, method
    assert (store.pointer.read_text(), (store.root / "HISTORY").read_text()) == (pointer, history), "a refused call wrote"
    assert _call(server.port, "GetStatus", READ) == grpc.StatusCode.OK
    assert _call(server.port, "GetStatus", ADMIN) == grpc.StatusCode.OK
    assert _call(server.port, "Reload", ADMIN) == grpc.StatusCode.OK
    # Authorised, so the store answers: one snapshot was ever promoted, nothing to roll back to.
    assert _call(server.port, "Rollback", ADMIN) == grpc.StatusCode.FAILED_PRECONDITION
    # Scoring stays open: no token, or any token at all.
    for security in (None, ClientSecurity(token="whatever")):
        with RelevanceClient(f"127.0.0.1:{server.port}", security=security) as client:
            assert client.score("office chair", ["D0001"]).metadata.snapshot_id


def test_a_scoring_token_closes_scoring_but_not_health(start_server, token_files):
    server = start_server(
        **{
            "auth.admin_token_file": str(token_files["admin"]),
            "auth.read_token_file": str(token_files["read"]),
            "auth.score_token_file": str(token_files["score"]),
        }
    )
    address = f"127.0.0.1:{server.port}"
    for token, expected in ((None, grpc.StatusCode.UNAUTHENTICATED), ("nope", grpc.StatusCode.UNAUTHENTICATED)):
        with RelevanceClient(address, security=ClientSecurity(token=token)) as client:
            with pytest.raises(grpc.RpcError) as caught:
                client.score("office chair", ["D0001"])
            assert caught.value.code() == expected
    for token in (SCORE, READ, ADMIN):
        with RelevanceClient(address, security=ClientSecurity(token=token)) as client:
            assert client.score("office chair", ["D0001"]).metadata.snapshot_id, token
    assert _call(server.port, "GetStatus", SCORE) == grpc.StatusCode.PERMISSION_DENIED
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_admin_refused_while_no_admin_token_is_configured(start_server):
    server = start_server()
    with AdminClient(f"127.0.0.1:{server.port}", security=ClientSecurity(token="guess")) as admin:
        with pytest.raises(grpc.RpcError) as caught:
            admin.status()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "auth.admin_token" in caught.value.details()


def test_cli_sends_the_token_from_a_file_or_the_environment(start_server, token_files, monkeypatch, capsys):
    server = start_server(
        **{"auth.admin_token_file": str(token_files["admin"]), "auth.read_token_file": str(token_files["read"])}
    )
    address = f"--address=127.0.0.1:{server.port}"
    monkeypatch.delenv("ENTREL_TOKEN", raising=False)
    assert main(["status", address]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    assert main(["status", address, f"--token-file={token_files['read']}"]) == 0
    assert "snapshot" in capsys.readouterr().out
    assert main(["admin", "reload", address, f"--token-file={token_files['read']}"]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    monkeypatch.setenv("ENTREL_TOKEN", ADMIN)
    assert main(["admin", "reload", address]) == 0
    assert "still serving" in capsys.readouterr().out
    assert main(["status", address, f"--token-file={token_files['admin'].parent / 'missing'}"]) == 2
    assert "client.token_file: cannot read" in capsys.readouterr().err
