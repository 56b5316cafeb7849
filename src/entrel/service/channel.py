"""How a client reaches a server: plaintext or TLS (optionally with its own certificate), and its bearer token.

One place for both clients (scoring and admin) and the CLI, so every
command connects the same way. The token travels as call metadata
("authorization: Bearer ..."), which works over TLS and, for loopback
tests, over plaintext too (gRPC's call credentials refuse plaintext).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from entrel.config import ClientSettings
from entrel.service.tls import channel_credentials
from entrel.service.tokens import read_token

__all__ = ["ClientSecurity"]


@dataclass(frozen=True)
class ClientSecurity:
    """TLS and token settings of a client; the default is plaintext without a token."""

    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    # Check the server's certificate against this name instead of the address's host.
    server_name: str = ""
    token: str | None = None

    @classmethod
    def from_settings(cls, client: ClientSettings) -> ClientSecurity:
        """From the [client] settings, reading the token file or variable now."""
        return cls(
            tls=client.tls,
            ca_file=client.ca_file,
            cert_file=client.cert_file,
            key_file=client.key_file,
            server_name=client.server_name,
            token=read_token(client.token_file, client.token_env, "client.token", env_optional=True),
        )

    @property
    def uses_tls(self) -> bool:
        return self.tls or bool(self.ca_file or self.cert_file)

    def open_channel(self, address: str) -> grpc.Channel:
        """A channel to `address` ("host:port"), secure when any TLS option is set."""
        if not self.uses_tls:
            return grpc.insecure_channel(address)
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.secure_channel(address, channel_credentials(self.ca_file, self.cert_file, self.key_file), options=options)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the token, if any."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()
