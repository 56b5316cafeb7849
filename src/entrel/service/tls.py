"""TLS credentials from PEM files: the server's (optionally requiring client certificates) and a client's.

Files are read once, when a server or channel is built; a missing or
unreadable one is a ConfigError naming its setting, so `entrel serve`
stops with one line instead of listening in plaintext.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from entrel.config import ConfigError, TlsSettings

__all__ = ["channel_credentials", "server_credentials"]


def _read(path: str, setting: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{setting}: {path} is not a PEM file")
    return data


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    """The server's credentials; None (plaintext) while no certificate is configured.

    With `client_ca_file` set the handshake fails for a client that presents
    no certificate, or one the CA did not sign (mutual TLS).
    """
    if not tls.cert_file:
        return None
    pair = (_read(tls.key_file, "tls.key_file"), _read(tls.cert_file, "tls.cert_file"))
    if not tls.client_ca_file:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials(
        [pair], root_certificates=_read(tls.client_ca_file, "tls.client_ca_file"), require_client_auth=True
    )


def channel_credentials(ca_file: str = "", cert_file: str = "", key_file: str = "") -> grpc.ChannelCredentials:
    """A client's TLS credentials: trust `ca_file` (else the system's roots), present `cert_file` when given."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "client.ca_file") if ca_file else None,
        private_key=_read(key_file, "client.key_file") if key_file else None,
        certificate_chain=_read(cert_file, "client.cert_file") if cert_file else None,
    )
