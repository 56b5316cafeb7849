"""The gRPC face of the engine: proto <-> domain, and errors -> status codes."""

from __future__ import annotations

import logging
import time

import grpc

from entrel.cache import SnapshotError
from entrel.catalog import CatalogItem
from entrel.errors import EntrelError
from entrel.logs import LogThrottle
from entrel.service import metrics
from entrel.service.access import PermissionDenied, Unauthenticated
from entrel.service.batcher import DeadlineExceeded, Overloaded
from entrel.service.decoding import Undecodable, lenient_decoder
from entrel.service.engine import InvalidRequest, ItemRequest, ItemStatus, RelevanceEngine, Role, ScoreResult, Source
from entrel.service.stats import ServingStats
from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["RelevanceServicer", "SERVICE_NAME", "STATUS_OF_ERROR", "add_to_server", "status_of"]

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Relevance"].full_name

# One table from error kind to gRPC status. Every error of the service derives from
# EntrelError; a kind not listed takes the status of its nearest listed ancestor.
STATUS_OF_ERROR: dict[type[BaseException], grpc.StatusCode] = {
    EntrelError: grpc.StatusCode.INTERNAL,
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    # Admin calls on the snapshot store (e.g. nothing earlier to roll back to): the store's state, not a bug.
    SnapshotError: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_of(error: BaseException) -> grpc.StatusCode:
    """The status of `error`'s nearest class in STATUS_OF_ERROR (walking its MRO); INTERNAL when none is."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[kind]
    return grpc.StatusCode.INTERNAL


_ITEM_STATUS = {
    ItemStatus.OK: pb.ITEM_STATUS_OK,
    ItemStatus.UNKNOWN_ITEM: pb.ITEM_STATUS_UNKNOWN_ITEM,
    ItemStatus.NO_ENTITIES: pb.ITEM_STATUS_NO_ENTITIES,
    ItemStatus.DEGRADED: pb.ITEM_STATUS_DEGRADED,
}
_ROLE = {
    Role.MATCHES: pb.ENTITY_ROLE_MATCHES,
    Role.NEUTRAL: pb.ENTITY_ROLE_NEUTRAL,
    Role.CONTRADICTS: pb.ENTITY_ROLE_CONTRADICTS,
}
_SOURCE = {Source.CACHED: pb.SCORE_SOURCE_CACHED, Source.LIVE: pb.SCORE_SOURCE_LIVE, Source.PRIOR: pb.SCORE_SOURCE_PRIOR}


def _answer_by(remaining_s: float) -> float:
    """Monotonic time by which live scoring must stop, so the answer (built and
    sent under load: GIL switches, serialisation) still beats the client's deadline."""
    margin = 0.025 + 0.05 * remaining_s
    return time.monotonic() + max(0.0, remaining_s - margin)


def _item_request(index: int, ref: pb.ItemRef) -> ItemRequest:
    kind = ref.WhichOneof("ref")
    if kind == "item_id":
        return ItemRequest(ref.item_id)
    if kind == "inline":
        item = ref.inline
        item_id = item.item_id or f"inline-{index}"
        return ItemRequest(
            item_id,
            CatalogItem(
                item_id=item_id,
                title=item.title,
                description=item.description,
                brand=item.brand,
                color=item.color,
                category=tuple(item.category_path),
                attributes=dict(item.attributes),
            ),
        )
    raise InvalidRequest(f"items[{index}] has neither item_id nor inline set")


def to_response(result: ScoreResult) -> pb.ScoreItemsResponse:
    response = pb.ScoreItemsResponse()
    for item in result.items:
        out = response.items.add(
            item_id=item.item_id,
            score=item.score,
            status=_ITEM_STATUS[item.status],
            message=item.message,
            title=item.title,
            coverage=item.coverage,
            compatibility=item.compatibility,
            entity_score=item.entity_score,
            similarity=item.similarity,
        )
        for e in item.entities or ():
            out.entities.add(
                type=e.entity.type.value,
                text=e.entity.text,
                score=e.score,
                source=_SOURCE[e.source],
                lift=e.lift,
                breaks_match=e.breaks_match,
                note=e.note,
                role=_ROLE[e.role],
                covers=e.covers,
                weight=e.weight,
            )
    t = result.timings_ms
    response.metadata.CopyFrom(
        pb.ResponseMetadata(
            snapshot_id=result.snapshot_id,
            model_fingerprint=result.model_fingerprint,
            tnorm=result.tnorm,
            normalized_query=result.normalized_query,
            query_cached=result.query_cached,
            cache_hits=result.cache_hits,
            cache_misses=result.cache_misses,
            live_scored_pairs=result.live_scored_pairs,
            prior_pairs=result.prior_pairs,
            lookup_ms=t.get("lookup", 0.0),
            live_ms=t.get("live", 0.0),
            aggregate_ms=t.get("aggregate", 0.0),
            total_ms=t.get("total", 0.0),
            similarity_weight=result.similarity_weight,
            query_vector_cached=result.query_vector_cached,
        )
    )
    return response


class RelevanceServicer(pb_grpc.RelevanceServicer):
    """Thin adapter: validation and scoring live in the engine."""

    def __init__(self, engine: RelevanceEngine, stats: ServingStats | None = None) -> None:
        self.engine = engine
        self.stats = stats if stats is not None else ServingStats()
        self._bad_requests = LogThrottle(log, engine.settings.server.bad_request_log_interval_s)

    def ScoreItems(self, request: pb.ScoreItemsRequest | Undecodable, context: grpc.ServicerContext) -> pb.ScoreItemsResponse:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        result: ScoreResult | None = None
        try:
            if isinstance(request, Undecodable):
                raise InvalidRequest(request.reason)
            # Checked before building the item list, so a huge request is refused cheaply (and only here).
            valid = self.engine.validate(request.query, len(request.items))
            items = [_item_request(i, ref) for i, ref in enumerate(request.items)]
            remaining = context.time_remaining()
            deadline = None if remaining is None else _answer_by(remaining)
            result = self.engine.score(valid, items, explain=request.explain, deadline=deadline)
            return to_response(result)
        except Exception as exc:
            code = status_of(exc)
            if code == grpc.StatusCode.INTERNAL:
                query = request.query[:200] if isinstance(request, pb.ScoreItemsRequest) else ""
                log.exception("ScoreItems failed", extra={"query": query})
                context.abort(code, "internal error while scoring; see the server log")
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                self._bad_requests.warning(type(request).__name__, "bad request refused", error=str(exc)[:300])
            context.abort(code, str(exc))
        finally:
            self.stats.record(*((result.cache_hits, result.cache_misses) if result is not None else (0, 0)))
            metrics.REQUESTS.labels(code.name).inc()
            metrics.REQUEST_SECONDS.observe(time.perf_counter() - started)


def add_to_server(servicer: RelevanceServicer, server: grpc.Server) -> None:
    """Register `servicer` like the generated helper does, but with a decoder
    that turns an undecodable body into INVALID_ARGUMENT instead of INTERNAL."""
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.ScoreItems,
        request_deserializer=lenient_decoder(pb.ScoreItemsRequest),
        response_serializer=pb.ScoreItemsResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {"ScoreItems": handler}),))
