"""TLS and mutual TLS on a real server over loopback, with certificates made here and thrown away.

A throw-away CA signs the server's certificate (for localhost and
127.0.0.1) and a client certificate; a second, untrusted CA signs an
impostor's client certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from entrel.cli import main
from entrel.config import ConfigError, load_settings
from entrel.service.client import AdminClient, ClientSecurity, RelevanceClient
from entrel.service.server import RelevanceServer

QUERY = "red leather office chair"


def _issue(
    name: str,
    folder: Path,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A P-256 key and a certificate for `name`, signed by `issuer` (self-signed without one); PEMs written to `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem, server.pem/.key and client.pem/.key under one trusted CA; impostor.pem/.key under another."""
    folder = tmp_path_factory.mktemp("pki")
    ca = _issue("ca", folder, ca=True)
    _issue("server", folder, ca, server=True)
    _issue("client", folder, ca)
    _issue("impostor", folder, _issue("rogue-ca", folder, ca=True))
    return folder


@pytest.fixture
def start_server(served_settings, scorer):
    """Start real servers with extra settings; all stopped at the end."""
    started: list[RelevanceServer] = []

    def start(**changes: str) -> RelevanceServer:
        server = RelevanceServer(served_settings.replace(**changes), scorer=scorer).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(grace=0)


def _tls(pki: Path, mutual: bool = False) -> dict[str, str]:
    changes = {"tls.cert_file": str(pki / "server.pem"), "tls.key_file": str(pki / "server.key")}
    if mutual:
        changes["tls.client_ca_file"] = str(pki / "ca.pem")
    return changes


def _score(port: int, security: ClientSecurity | None = None) -> str:
    with RelevanceClient(f"127.0.0.1:{port}", timeout_s=10, security=security) as client:
        return client.score(QUERY, ["D0001"]).metadata.snapshot_id


def _refused(port: int, security: ClientSecurity | None = None) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        _score(port, security)
    return caught.value.code()


def test_tls_client_succeeds_and_plaintext_or_untrusting_clients_fail(start_server, pki):
    server = start_server(**_tls(pki))
    assert server.tls
    assert _score(server.port, ClientSecurity(ca_file=str(pki / "ca.pem")))
    # The server's certificate also names localhost; a client can check it under that name.
    assert _score(server.port, ClientSecurity(ca_file=str(pki / "ca.pem"), server_name="localhost"))
    assert _refused(server.port) == grpc.StatusCode.UNAVAILABLE, "a plaintext client must not get through"
    assert _refused(server.port, ClientSecurity(ca_file=str(pki / "rogue-ca.pem"))) == grpc.StatusCode.UNAVAILABLE
    # A certificate that does not name the host dialled is refused too.
    assert _refused(server.port, ClientSecurity(ca_file=str(pki / "ca.pem"), server_name="elsewhere.example")) == (
        grpc.StatusCode.UNAVAILABLE
    )


def test_mutual_tls_needs_a_client_certificate_from_the_configured_ca(start_server, pki):
    server = start_server(**_tls(pki, mutual=True))
    ca = str(pki / "ca.pem")
    client = ClientSecurity(ca_file=ca, cert_file=str(pki / "client.pem"), key_file=str(pki / "client.key"))
    assert _score(server.port, client)
    assert _refused(server.port, ClientSecurity(ca_file=ca)) == grpc.StatusCode.UNAVAILABLE, "no client certificate"
    impostor = ClientSecurity(ca_file=ca, cert_file=str(pki / "impostor.pem"), key_file=str(pki / "impostor.key"))
    assert _refused(server.port, impostor) == grpc.StatusCode.UNAVAILABLE, "a client certificate from another CA"
    assert _refused(server.port) == grpc.StatusCode.UNAVAILABLE


def test_admin_service_on_its_own_port_uses_the_same_certificate(start_server, pki, tmp_path):
    token = tmp_path / "admin.token"
    token.write_text("s3cret-admin\n")
    server = start_server(**_tls(pki), **{"server.admin_address": "127.0.0.1:0", "auth.admin_token_file": str(token)})
    assert server.admin_port not in (0, server.port)
    security = ClientSecurity(ca_file=str(pki / "ca.pem"), token="s3cret-admin")
    with AdminClient(f"127.0.0.1:{server.admin_port}", security=security) as admin:
        assert admin.status().model_fingerprint == server.scorer.fingerprint
    with AdminClient(f"127.0.0.1:{server.admin_port}", timeout_s=10, security=ClientSecurity(token="s3cret-admin")) as plain:
        with pytest.raises(grpc.RpcError) as caught:
            plain.status()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # The admin service is only on its own port; the scoring port does not offer it.
    with AdminClient(f"127.0.0.1:{server.port}", security=security) as wrong_port:
        with pytest.raises(grpc.RpcError) as caught:
            wrong_port.status()
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_cli_takes_the_matching_tls_options(start_server, pki, capsys):
    server = start_server(**_tls(pki, mutual=True))
    address = f"--address=127.0.0.1:{server.port}"
    files = [f"--ca-file={pki / 'ca.pem'}", f"--cert-file={pki / 'client.pem'}", f"--key-file={pki / 'client.key'}"]
    assert main(["score", QUERY, "D0001", address, *files]) == 0
    assert "  1. " in capsys.readouterr().out
    assert main(["score", QUERY, "D0001", address, *files[:1]]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
    # The same through the [client] settings instead of flags.
    sets = [
        f"--set=client.ca_file={pki / 'ca.pem'}",
        f"--set=client.cert_file={pki / 'client.pem'}",
        f"--set=client.key_file={pki / 'client.key'}",
    ]
    assert main([*sets, "score", QUERY, "D0001", address]) == 0


def test_bad_tls_settings_are_one_line_configuration_errors(served_settings, scorer, pki, tmp_path):
    with pytest.raises(ConfigError, match="tls.cert_file and tls.key_file go together"):
        load_settings(overrides=[f"tls.cert_file={pki / 'server.pem'}"])
    with pytest.raises(ConfigError, match="tls.client_ca_file"):
        load_settings(overrides=[f"tls.client_ca_file={pki / 'ca.pem'}"])
    missing = {"tls.cert_file": str(tmp_path / "nope.pem"), "tls.key_file": str(pki / "server.key")}
    with pytest.raises(ConfigError, match=r"tls.cert_file: cannot read .*nope.pem"):
        RelevanceServer(served_settings.replace(**missing), scorer=scorer)
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("hello")
    with pytest.raises(ConfigError, match="tls.key_file: .*junk.pem is not a PEM file"):
        RelevanceServer(
            served_settings.replace(**{"tls.cert_file": str(pki / "server.pem"), "tls.key_file": str(not_pem)}), scorer=scorer
        )
