"""The Admin gRPC service: status, reload and rollback of the served snapshot; operators' overrides.

A thin adapter like the scoring servicer: the snapshot watcher and store,
and the override store and table, do the work; errors map through the one
table (`grpc_service.status_of`). Who may call it is the auth interceptor's
business, not this module's; who did is recorded in the override audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from entrel.overrides import (
    ANY_QUERY,
    InvalidOverride,
    Override,
    OverrideNotFound,
    OverrideTable,
    make_override,
    override_key,
    override_query,
)
from entrel.service.grpc_service import status_of
from entrel.service.snapshots import SnapshotWatcher
from entrel.service.stats import ServingStats
from entrel.v1 import admin_pb2 as pb
from entrel.v1 import admin_pb2_grpc as pb_grpc

__all__ = ["ADMIN_SERVICE_NAME", "AdminServicer"]

log = logging.getLogger(__name__)

ADMIN_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Admin"].full_name

_T = TypeVar("_T")


class AdminServicer(pb_grpc.AdminServicer):
    """Answers operators from the server's own parts (passed in, so this module needs no server)."""

    def __init__(
        self,
        watcher: SnapshotWatcher,
        model_fingerprint: str,
        stats: ServingStats,
        queue_depth: Callable[[], int],
        serving: Callable[[], bool],
        overrides: OverrideTable,
        principal: Callable[[grpc.ServicerContext], str],
        max_query_chars: int,
    ) -> None:
        self.watcher = watcher
        self.overrides = overrides
        self._principal = principal
        self._max_query_chars = max_query_chars
        self.model_fingerprint = model_fingerprint
        self.stats = stats
        self._queue_depth = queue_depth
        self._serving = serving

    def _served(self) -> str:
        snap = self.watcher.current()
        return snap.snapshot_id if snap is not None else ""

    def _call(self, name: str, context: grpc.ServicerContext, work: Callable[[], _T]) -> _T:
        try:
            return work()
        except Exception as exc:
            code = status_of(exc)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("admin call failed", extra={"method": name})
                context.abort(code, f"internal error in {name}; see the server log")
            log.warning("admin call refused", extra={"method": name, "error": str(exc)[:300]})
            context.abort(code, str(exc))

    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.ServerStatus:
        def status() -> pb.ServerStatus:
            counts = self.stats.snapshot()
            return pb.ServerStatus(
                snapshot_id=self._served(),
                model_fingerprint=self.model_fingerprint,
                promoted_snapshot_id=self.watcher.store.current_id() or "",
                queue_depth=self._queue_depth(),
                cache_hits=counts.cache_hits,
                cache_misses=counts.cache_misses,
                hit_rate=counts.hit_rate,
                requests=counts.requests,
                uptime_s=counts.uptime_s,
                serving=self._serving(),
            )

        return self._call("GetStatus", context, status)

    def _change(self, name: str, context: grpc.ServicerContext, act: Callable[[], object]) -> pb.SnapshotChange:
        def change() -> pb.SnapshotChange:
            before = self._served()
            act()
            after = self._served()
            promoted = self.watcher.store.current_id() or ""
            log.info("admin call", extra={"method": name, "previous": before, "snapshot_id": after, "promoted": promoted})
            return pb.SnapshotChange(
                previous_snapshot_id=before, snapshot_id=after, promoted_snapshot_id=promoted, changed=before != after
            )

        return self._call(name, context, change)

    def Reload(self, request: pb.ReloadRequest, context: grpc.ServicerContext) -> pb.SnapshotChange:
        return self._change("Reload", context, lambda: self.watcher.refresh(force=True))

    def Rollback(self, request: pb.RollbackRequest, context: grpc.ServicerContext) -> pb.SnapshotChange:
        return self._change("Rollback", context, self.watcher.rollback)

    # -- overrides ---------------------------------------------------------

    def SetOverride(self, request: pb.SetOverrideRequest, context: grpc.ServicerContext) -> pb.OverrideChange:
        def set_override() -> pb.OverrideChange:
            key = override_key(request.query, request.entity_type, request.entity_text, self._max_query_chars)
            score = None if request.ignore_type else request.score
            after = make_override(key, score, request.reason, self._principal(context))
            before = self.overrides.store.put(after)
            self.overrides.refresh()  # this server's next request sees it; other replicas within the poll interval
            snap = self.watcher.current()
            known = key.ignores_type or (snap is not None and snap.entity_id(key.entity) is not None)
            note = (
                "" if known else "no item of the served snapshot has this entity: it applies to inline items and later snapshots"
            )
            log.info("override set", extra={"override": key.describe(), "principal": after.principal})
            change = pb.OverrideChange(after=_message(after), entity_in_snapshot=known, note=note)
            if before is not None:
                change.before.CopyFrom(_message(before))
            return change

        return self._call("SetOverride", context, set_override)

    def DeleteOverride(self, request: pb.DeleteOverrideRequest, context: grpc.ServicerContext) -> pb.OverrideChange:
        def delete_override() -> pb.OverrideChange:
            key = override_key(request.query, request.entity_type, request.entity_text, self._max_query_chars)
            reason = request.reason.strip()
            if not reason:
                raise InvalidOverride("a reason is required (it is kept in the audit log)")
            before = self.overrides.store.delete(key, self._principal(context), reason)
            if before is None:
                raise OverrideNotFound(f"no override for {key.describe()}")
            self.overrides.refresh()
            log.info("override deleted", extra={"override": key.describe()})
            return pb.OverrideChange(before=_message(before), entity_in_snapshot=True)

        return self._call("DeleteOverride", context, delete_override)

    def ListOverrides(self, request: pb.ListOverridesRequest, context: grpc.ServicerContext) -> pb.OverrideList:
        def list_overrides() -> pb.OverrideList:
            version, entries = self.overrides.store.entries()
            if request.query:
                wanted = {ANY_QUERY, override_query(request.query, self._max_query_chars)}
                entries = [o for o in entries if o.key.query in wanted]
            # In the store's key order: by query, then type, then text.
            return pb.OverrideList(overrides=[_message(o) for o in entries], version=version)

        return self._call("ListOverrides", context, list_overrides)


def _message(override: Override) -> pb.Override:
    key = override.key
    return pb.Override(
        query=key.query,
        entity_type=key.type.value,
        entity_text=key.text,
        score=override.score if override.score is not None else 0.0,
        ignore_type=key.ignores_type,
        reason=override.reason,
        principal=override.principal,
        updated_at=override.updated_at,
    )
