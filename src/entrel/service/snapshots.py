"""Keeps the serving snapshot current without a restart.

A background thread polls the store's CURRENT pointer. When it names a new
snapshot, the watcher opens it, checks that it was built by the live model
(scores of two models must not mix), and swaps one reference. Requests
take that reference once at their start, so in-flight calls finish on the
snapshot they began with; the old environment closes when the last of them
lets go of it (readers close when garbage-collected).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from entrel.cache import SnapshotError, SnapshotReader, SnapshotStore
from entrel.service import metrics

__all__ = ["SnapshotWatcher"]

log = logging.getLogger(__name__)


class SnapshotWatcher:
    """The snapshot to serve, re-read whenever the store promotes another."""

    def __init__(
        self,
        store: SnapshotStore,
        model_fingerprint: str,
        interval_s: float,
        on_change: Callable[[SnapshotReader | None], None] = lambda _: None,
    ) -> None:
        self.store = store
        self.model_fingerprint = model_fingerprint
        self.interval_s = interval_s
        self._on_change = on_change
        self._current: SnapshotReader | None = None
        # Last pointer value acted on, so a refused snapshot is not retried every poll.
        self._seen: str | None = None
        # The poll thread and admin calls (Reload, Rollback) both refresh: one at a time.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> SnapshotReader | None:
        """The snapshot to use for one request (None: serve live only)."""
        return self._current

    def refresh(self, force: bool = False) -> bool:
        """Pick up a newly promoted snapshot; True when the served one changed.

        `force` looks again at a pointer already acted on (an operator's
        Reload), e.g. one whose snapshot was refused as unreadable.
        """
        with self._lock:
            return self._refresh(force)

    def _refresh(self, force: bool) -> bool:
        wanted = self.store.current_id()
        if wanted == self._seen and not force:
            return False
        self._seen = wanted
        if self._current is not None and wanted == self._current.snapshot_id:
            return False
        if wanted is None:
            if self._current is None:
                log.warning("no snapshot promoted yet: every pair is scored live", extra={"root": str(self.store.root)})
            return False
        try:
            reader = self.store.open(wanted)
        except SnapshotError as exc:
            metrics.SNAPSHOT_REFUSED.inc()
            log.error("snapshot refused: unreadable", extra={"snapshot_id": wanted, "error": str(exc)})
            return self._fall_back() if self._current is None else False
        if reader.manifest.model_fingerprint != self.model_fingerprint:
            metrics.SNAPSHOT_REFUSED.inc()
            log.error(
                "snapshot refused: built by another model",
                extra={
                    "snapshot_id": wanted,
                    "snapshot_model": reader.manifest.model_fingerprint,
                    "live_model": self.model_fingerprint,
                },
            )
            return False
        self._swap(reader)
        return True

    def rollback(self) -> str:
        """Promote the previously promoted snapshot in the store, then serve it now; its id."""
        with self._lock:
            promoted = self.store.rollback()
            self._refresh(force=True)
            return promoted

    def _fall_back(self) -> bool:
        """At start-up with a broken CURRENT: serve the newest snapshot that opens and matches."""
        for snapshot_id in reversed(self.store.list_ids()):
            if snapshot_id == self._seen:
                continue
            try:
                reader = self.store.open(snapshot_id, verify=True)
            except SnapshotError:
                continue
            if reader.manifest.model_fingerprint == self.model_fingerprint:
                log.warning("serving an older snapshot while CURRENT is broken", extra={"snapshot_id": snapshot_id})
                self._swap(reader)
                return True
        return False

    def _swap(self, reader: SnapshotReader) -> None:
        previous, self._current = self._current, reader
        metrics.SNAPSHOT_SWAPS.inc()
        log.info(
            "serving snapshot",
            extra={"snapshot_id": reader.snapshot_id, "previous": previous.snapshot_id if previous else None},
        )
        self._on_change(reader)

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="entrel-snapshot-watcher", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except Exception:  # never let the watcher die: the next poll retries
                log.exception("snapshot refresh failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
