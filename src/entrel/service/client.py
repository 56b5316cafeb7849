"""Small Python clients for the entrel gRPC services: scoring and admin.

>>> with RelevanceClient("127.0.0.1:50551") as client:  # doctest: +SKIP
...     response = client.score("red leather office chair", ["D0001", "D0002"], explain=True)

Over TLS, with a client certificate and a token::

    security = ClientSecurity(ca_file="ca.pem", cert_file="me.pem", key_file="me.key", token="...")
    with AdminClient("search-1:50552", security=security) as admin:
        print(admin.status().snapshot_id)
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from entrel.service.channel import ClientSecurity
from entrel.v1 import admin_pb2, admin_pb2_grpc
from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["AdminClient", "ClientSecurity", "RelevanceClient"]


class _Client:
    """A channel to one server and the token sent with each call."""

    def __init__(self, address: str, timeout_s: float, security: ClientSecurity | None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.security = security or ClientSecurity()
        self._channel = self.security.open_channel(address)
        self._metadata = self.security.metadata

    def close(self) -> None:
        self._channel.close()


class RelevanceClient(_Client):
    """Calls ScoreItems and the health service of one server."""

    def __init__(self, address: str, timeout_s: float = 10.0, security: ClientSecurity | None = None) -> None:
        super().__init__(address, timeout_s, security)
        self._stub = pb_grpc.RelevanceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def score(
        self,
        query: str,
        items: Sequence[str | pb.InlineItem],
        explain: bool = False,
        timeout_s: float | None = None,
    ) -> pb.ScoreItemsResponse:
        """Score catalog ids and/or inline items; raises grpc.RpcError on a failed call."""
        refs = [pb.ItemRef(inline=i) if isinstance(i, pb.InlineItem) else pb.ItemRef(item_id=i) for i in items]
        request = pb.ScoreItemsRequest(query=query, items=refs, explain=explain)
        return self._stub.ScoreItems(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)

    def is_serving(self, service: str = "") -> bool:
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def __enter__(self) -> RelevanceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AdminClient(_Client):
    """Calls the Admin service (needs a token: the read-only one for status, the admin one for changes)."""

    def __init__(self, address: str, timeout_s: float = 30.0, security: ClientSecurity | None = None) -> None:
        super().__init__(address, timeout_s, security)
        self._stub = admin_pb2_grpc.AdminStub(self._channel)

    def status(self) -> admin_pb2.ServerStatus:
        return self._stub.GetStatus(admin_pb2.GetStatusRequest(), timeout=self.timeout_s, metadata=self._metadata)

    def reload(self) -> admin_pb2.SnapshotChange:
        """Serve what CURRENT names now, not at the next poll."""
        return self._stub.Reload(admin_pb2.ReloadRequest(), timeout=self.timeout_s, metadata=self._metadata)

    def rollback(self) -> admin_pb2.SnapshotChange:
        """Promote and serve the previously promoted snapshot (FAILED_PRECONDITION when there is none)."""
        return self._stub.Rollback(admin_pb2.RollbackRequest(), timeout=self.timeout_s, metadata=self._metadata)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
