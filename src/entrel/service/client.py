"""A small Python client for the entrel gRPC service.

>>> with RelevanceClient("127.0.0.1:50551") as client:  # doctest: +SKIP
...     response = client.score("red leather office chair", ["D0001", "D0002"], explain=True)
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["RelevanceClient"]


class RelevanceClient:
    """Calls ScoreItems and the health service of one server."""

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(address)
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
        return self._stub.ScoreItems(request, timeout=timeout_s or self.timeout_s)

    def is_serving(self, service: str = "") -> bool:
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RelevanceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
