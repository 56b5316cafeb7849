"""The gRPC face of the engine: proto <-> domain, and errors -> status codes."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence

import grpc
import numpy as np

from entrel.cache import SnapshotError
from entrel.catalog import CatalogItem
from entrel.errors import EntrelError
from entrel.logs import LogThrottle
from entrel.overrides import InvalidOverride, OverrideNotFound
from entrel.service import metrics
from entrel.service.access import PermissionDenied, Unauthenticated
from entrel.service.answers import STATUS_OF_CODE, ItemStatus, Role, ScoreResult, Source
from entrel.service.batcher import DeadlineExceeded, Overloaded
from entrel.service.decoding import Undecodable, lenient_decoder
from entrel.service.engine import RelevanceEngine
from entrel.service.requests import Group, InvalidRequest, ItemRefs
from entrel.service.stats import ServingStats
from entrel.service.wire import item_scores_by_group, varint
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
    InvalidOverride: grpc.StatusCode.INVALID_ARGUMENT,
    OverrideNotFound: grpc.StatusCode.NOT_FOUND,
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
_SOURCE = {
    Source.CACHED: pb.SCORE_SOURCE_CACHED,
    Source.LIVE: pb.SCORE_SOURCE_LIVE,
    Source.PRIOR: pb.SCORE_SOURCE_PRIOR,
    Source.OVERRIDE: pb.SCORE_SOURCE_OVERRIDE,
}
# The enum number of each engine status code.
_STATUS_NUMBER = np.array([_ITEM_STATUS[status] for status in STATUS_OF_CODE], dtype=np.uint8)
# Tags of ScoreBatchResponse.groups (1) and ScoreItemsResponse.metadata (2), both length-delimited.
_GROUP, _METADATA = b"\x0a", b"\x12"


def _answer_by(remaining_s: float) -> float:
    """Monotonic time by which live scoring must stop, so the answer (built and
    sent under load: GIL switches, serialisation) still beats the client's deadline."""
    margin = 0.025 + 0.05 * remaining_s
    return time.monotonic() + max(0.0, remaining_s - margin)


def _n_items(request: pb.ScoreItemsRequest) -> int:
    """How many items a request (or a batch's group) asks for: its refs and its bare ids."""
    return len(request.items) + len(request.item_ids)


def _item_refs(request: pb.ScoreItemsRequest, before_inline: Callable[[], None], where: str = "") -> ItemRefs:
    """The engine's item references (the request's refs, then its bare ids); InvalidRequest naming
    `<where>items[i]` for a ref with nothing set.

    `before_inline` runs before the first inline item is copied out of the
    message (the engine's quick refusal when its inline slots are taken).
    """
    refs = request.items
    ids = [ref.item_id for ref in refs]
    inline: dict[int, CatalogItem] = {}
    # An id is "" only for an inline item, a ref with nothing set, or an explicitly empty id;
    # most requests have none, and a scan in C says so without a Python step per item.
    blank = [(i, refs[i].WhichOneof("ref")) for i, item_id in enumerate(ids) if not item_id] if "" in ids else []
    if any(kind == "inline" for _, kind in blank):
        before_inline()
    for index, kind in blank:
        ref = refs[index]
        if kind == "inline":
            item = ref.inline
            ids[index] = item.item_id or f"inline-{index}"
            inline[index] = CatalogItem(
                item_id=ids[index],
                title=item.title,
                description=item.description,
                brand=item.brand,
                color=item.color,
                category=tuple(item.category_path),
                attributes=dict(item.attributes),
            )
        elif kind != "item_id":
            raise InvalidRequest(f"{where}items[{index}] has neither item_id nor inline set")
    ids += request.item_ids  # copied in C: the cheap form for the common, id-only request
    return ItemRefs(ids, inline)


def response_bytes(result: ScoreResult) -> bytes:
    """The wire bytes of one group's ScoreItemsResponse: its items encoded from the columns (or built with
    their explanations), then its metadata."""
    return _response_bytes(result, _encoded_items([result])[0])


def batch_response_bytes(results: Sequence[ScoreResult]) -> bytes:
    """The wire bytes of a ScoreBatchResponse: every unexplained group's items encoded in one pass, and each
    group framed as the response's field 1, with no message built between (parsing and re-serialising
    a thousand items cost more than encoding them)."""
    groups = [_response_bytes(r, encoded) for r, encoded in zip(results, _encoded_items(results), strict=True)]
    return b"".join(_GROUP + varint(len(group)) + group for group in groups)


def _encoded_items(results: Sequence[ScoreResult]) -> list[bytes | None]:
    """Each group's ItemScores as wire bytes, written from the columns of all unexplained groups at once;
    None for a group built message by message (explained, or without columns)."""
    plain = [r.columns for r in results if r.columns is not None and r.explained is None]
    if not plain:
        return [None] * len(results)
    # Each group's message codes index its own texts: one table of them all, codes shifted to match.
    texts: list[str] = []
    offset_of: dict[int, int] = {}
    for c in plain:
        if id(c.message_texts) not in offset_of:
            offset_of[id(c.message_texts)] = len(texts)
            texts += c.message_texts
    sizes = [len(c) for c in plain]
    # Shifted once for the call, not group by group (two numpy calls where there were twenty).
    shifts = np.repeat([offset_of[id(c.message_texts)] for c in plain], sizes)
    messages = np.concatenate([c.messages for c in plain]).astype(np.int64) + shifts
    encoded = iter(
        item_scores_by_group(
            sizes,
            list(itertools.chain.from_iterable(c.item_ids for c in plain)),
            np.concatenate([c.scores for c in plain]),
            _STATUS_NUMBER[np.concatenate([c.statuses for c in plain])],
            messages,
            texts,
            np.concatenate([c.coverage for c in plain]),
            np.concatenate([c.compatibility for c in plain]),
            np.concatenate([c.entity_scores for c in plain]),
            np.concatenate([c.similarity for c in plain]),
            _joined([c.titles for c in plain], sizes),
            _joined([c.excluded for c in plain], sizes),
        )
    )
    return [next(encoded) if r.columns is not None and r.explained is None else None for r in results]


def _joined(columns: Sequence[Sequence[str] | None], sizes: Sequence[int]) -> list[str] | None:
    """Per-group string columns as one ("" for a group's None); None when every group's is None."""
    if all(c is None for c in columns):
        return None
    return [text for c, n in zip(columns, sizes, strict=True) for text in (c if c is not None else [""] * n)]


def _response_bytes(result: ScoreResult, encoded: bytes | None) -> bytes:
    """ScoreItemsResponse bytes: `encoded` items (else built one by one), then the metadata (field 2).
    Fields in number order, as the runtime writes them; an unexplained group's items also carry zero
    floats, which parse as the defaults they are."""
    if encoded is None:
        built = pb.ScoreItemsResponse()
        _add_items(built, result)
        encoded = built.SerializeToString()
    t = result.timings_ms
    metadata = pb.ResponseMetadata(
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
        exclusion_penalty=result.exclusion_penalty,
        query_vector_cached=result.query_vector_cached,
    ).SerializeToString()
    return encoded + _METADATA + varint(len(metadata)) + metadata


def _add_items(response: pb.ScoreItemsResponse, result: ScoreResult) -> None:
    """Items as messages, one by one: the path of explained answers (each entity is a message too)."""
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
            excluded=item.excluded,
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
                override_reason=e.reason,
            )


class RelevanceServicer(pb_grpc.RelevanceServicer):
    """Thin adapter: validation and scoring live in the engine."""

    def __init__(self, engine: RelevanceEngine, stats: ServingStats | None = None) -> None:
        self.engine = engine
        self.stats = stats if stats is not None else ServingStats()
        self._bad_requests = LogThrottle(log, engine.settings.server.bad_request_log_interval_s)

    def _answer(
        self,
        name: str,
        request: object,
        context: grpc.ServicerContext,
        work: Callable[[float | None], tuple[bytes, list[ScoreResult]]],
    ) -> bytes:
        """Run one scoring call: its deadline, error mapping, counters and metrics, alike for every method."""
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        results: list[ScoreResult] = []
        try:
            if isinstance(request, Undecodable):
                raise InvalidRequest(request.reason)
            remaining = context.time_remaining()
            response, results = work(None if remaining is None else _answer_by(remaining))
            return response
        except Exception as exc:
            code = status_of(exc)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("scoring call failed", extra={"method": name, "query": _first_query(request)})
                context.abort(code, "internal error while scoring; see the server log")
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                self._bad_requests.warning(type(request).__name__, "bad request refused", error=str(exc)[:300])
            context.abort(code, str(exc))
        finally:
            self.stats.record(sum(r.cache_hits for r in results), sum(r.cache_misses for r in results))
            metrics.REQUESTS.labels(code.name).inc()
            metrics.REQUEST_SECONDS.observe(time.perf_counter() - started)

    def ScoreItems(self, request: pb.ScoreItemsRequest | Undecodable, context: grpc.ServicerContext) -> bytes:
        """The ScoreItemsResponse, as wire bytes (gRPC sends them as they are)."""

        def work(deadline: float | None) -> tuple[bytes, list[ScoreResult]]:
            assert isinstance(request, pb.ScoreItemsRequest)
            # Checked before building the item list, so a huge request is refused cheaply (and only here).
            valid = self.engine.validate(request.query, _n_items(request))
            refs = _item_refs(request, self.engine.refuse_inline_when_busy)
            result = self.engine.score(valid, refs, explain=request.explain, deadline=deadline)
            return response_bytes(result), [result]

        return self._answer("ScoreItems", request, context, work)

    def ScoreBatch(self, request: pb.ScoreBatchRequest | Undecodable, context: grpc.ServicerContext) -> bytes:
        """The ScoreBatchResponse, as wire bytes."""

        def work(deadline: float | None) -> tuple[bytes, list[ScoreResult]]:
            assert isinstance(request, pb.ScoreBatchRequest)
            # Limits first (group count, items, each query), before any item list is built.
            valid = self.engine.validate_batch([(g.query, _n_items(g)) for g in request.groups])
            groups = [
                Group(v, _item_refs(g, self.engine.refuse_inline_when_busy, f"groups[{k}]."), g.explain)
                for k, (v, g) in enumerate(zip(valid, request.groups, strict=True))
            ]
            results = self.engine.score_batch(groups, deadline=deadline)
            return batch_response_bytes(results), results

        return self._answer("ScoreBatch", request, context, work)


def _first_query(request: object) -> str:
    """The (first) query of a request, cut short, for the log of an internal error."""
    if isinstance(request, pb.ScoreItemsRequest):
        return request.query[:200]
    if isinstance(request, pb.ScoreBatchRequest) and request.groups:
        return request.groups[0].query[:200]
    return ""


def add_to_server(servicer: RelevanceServicer, server: grpc.Server) -> None:
    """Register `servicer` like the generated helper does, but with a decoder
    that turns an undecodable body into INVALID_ARGUMENT instead of INTERNAL."""
    handlers: dict[str, grpc.RpcMethodHandler] = {
        "ScoreItems": grpc.unary_unary_rpc_method_handler(
            servicer.ScoreItems,
            request_deserializer=lenient_decoder(pb.ScoreItemsRequest),
            response_serializer=None,  # the servicer answers with wire bytes
        ),
        "ScoreBatch": grpc.unary_unary_rpc_method_handler(
            servicer.ScoreBatch,
            request_deserializer=lenient_decoder(pb.ScoreBatchRequest),
            response_serializer=None,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
