"""The Admin gRPC service: status, reload and rollback of the served snapshot.

A thin adapter like the scoring servicer: the snapshot watcher and store
do the work, errors map through the one table (`grpc_service.status_of`).
Who may call it is the auth interceptor's business, not this module's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

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
    ) -> None:
        self.watcher = watcher
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
