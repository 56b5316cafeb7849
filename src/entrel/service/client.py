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

from entrel.errors import EntrelError
from entrel.service.channel import ClientSecurity
from entrel.v1 import admin_pb2, admin_pb2_grpc
from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["AdminClient", "ClientSecurity", "IncompleteAnswer", "RelevanceClient"]


class IncompleteAnswer(EntrelError):
    """The server answered fewer items than were asked for (a server older than `item_ids` ignores them)."""


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


def _score_request(query: str, items: Sequence[str | pb.InlineItem], explain: bool, compact: bool) -> pb.ScoreItemsRequest:
    ids = [i for i in items if isinstance(i, str)]
    if compact and len(ids) == len(items):  # ids alone: the compact form
        return pb.ScoreItemsRequest(query=query, item_ids=ids, explain=explain)
    refs = [pb.ItemRef(inline=i) if isinstance(i, pb.InlineItem) else pb.ItemRef(item_id=i) for i in items]
    return pb.ScoreItemsRequest(query=query, items=refs, explain=explain)


def _check_answered(asked: int, response: pb.ScoreItemsResponse) -> None:
    """Raise IncompleteAnswer unless the response has an item for each of the `asked` items."""
    if len(response.items) != asked:
        raise IncompleteAnswer(
            f"the server answered {len(response.items)} of {asked} items; a server older than "
            "ScoreItemsRequest.item_ids ignores bare ids: upgrade it, or create the client with compact_ids=False"
        )


class RelevanceClient(_Client):
    """Calls ScoreItems and the health service of one server."""

    def __init__(
        self, address: str, timeout_s: float = 10.0, security: ClientSecurity | None = None, compact_ids: bool = True
    ) -> None:
        """`compact_ids` sends id-only item lists as `item_ids` (smaller, faster to read); False sends
        ItemRefs, which servers older than that field need."""
        super().__init__(address, timeout_s, security)
        self.compact_ids = compact_ids
        self._stub = pb_grpc.RelevanceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def score(
        self,
        query: str,
        items: Sequence[str | pb.InlineItem],
        explain: bool = False,
        timeout_s: float | None = None,
    ) -> pb.ScoreItemsResponse:
        """Score catalog ids and/or inline items; raises grpc.RpcError on a failed call, IncompleteAnswer on a short one."""
        request = _score_request(query, items, explain, self.compact_ids)
        response = self._stub.ScoreItems(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        _check_answered(len(items), response)
        return response

    def score_batch(
        self,
        groups: Sequence[tuple[str, Sequence[str | pb.InlineItem]]],
        explain: bool = False,
        timeout_s: float | None = None,
    ) -> pb.ScoreBatchResponse:
        """Score several (query, items) groups in one call; each answer is what `score` gives that group."""
        request = pb.ScoreBatchRequest(
            groups=[_score_request(query, items, explain, self.compact_ids) for query, items in groups]
        )
        response = self._stub.ScoreBatch(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        for (_, items), answer in zip(groups, response.groups, strict=True):
            _check_answered(len(items), answer)
        return response

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

    def set_override(
        self, query: str, entity_type: str, entity_text: str, score: float | None, reason: str
    ) -> admin_pb2.OverrideChange:
        """Set (or replace) an override; `score` None ignores every entity of the type for the query (no text)."""
        request = admin_pb2.SetOverrideRequest(
            query=query,
            entity_type=entity_type,
            entity_text=entity_text,
            score=0.0 if score is None else score,
            ignore_type=score is None,
            reason=reason,
        )
        return self._stub.SetOverride(request, timeout=self.timeout_s, metadata=self._metadata)

    def delete_override(self, query: str, entity_type: str, entity_text: str, reason: str) -> admin_pb2.OverrideChange:
        request = admin_pb2.DeleteOverrideRequest(query=query, entity_type=entity_type, entity_text=entity_text, reason=reason)
        return self._stub.DeleteOverride(request, timeout=self.timeout_s, metadata=self._metadata)

    def list_overrides(self, query: str = "") -> admin_pb2.OverrideList:
        """The overrides in force (only `query`'s and those for every query, when given)."""
        return self._stub.ListOverrides(
            admin_pb2.ListOverridesRequest(query=query), timeout=self.timeout_s, metadata=self._metadata
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
