"""Entity extraction of inline items in worker processes, bounded by each request's deadline.

spaCy holds the GIL for the whole parse of an item. Run in the server's
process, a flood of inline items made every cached request wait behind it
(cached p99 0.5 s during an inline flood). In a worker process the parse
costs the server's threads only a wait on a future, with the GIL released.

A request waits for its items until its own time is up, then cancels those
not started and degrades only its own items; a started item finishes in the
worker (each is bounded by the inline limits). The workers hold the
current snapshot's vocabulary, so live extraction matches the nightly one:
a new snapshot starts a new pool, warmed before it takes over. A worker
that dies (killed, out of memory) costs the items it held; the next call
starts a new pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from entrel.catalog import CatalogItem, Entity
from entrel.catalog.extractor import EntityExtractor, Vocabulary
from entrel.config import ExtractionSettings

__all__ = ["InlineExtraction"]

log = logging.getLogger(__name__)

# How long preparing a pool waits for every worker to load spaCy.
_WARM_UP_LIMIT_S = 120.0
# The worker's extractor, built once per worker by _start_worker.
_worker_extractor: EntityExtractor | None = None


def _start_worker(settings: ExtractionSettings, vocabulary_json: str, niceness: int) -> None:
    global _worker_extractor
    # Lower priority than the serving process: when cores are scarce, cached requests run first
    # and inline items wait (up to their deadline, then degrade), not the other way round.
    os.nice(niceness)
    vocabulary = Vocabulary.from_json(vocabulary_json) if vocabulary_json else Vocabulary.learn([])
    _worker_extractor = EntityExtractor(settings, vocabulary)


def _extract(item: CatalogItem) -> list[Entity]:
    assert _worker_extractor is not None, "set by the pool's initializer"
    return _worker_extractor.extract_transient(item)


def _warm_up() -> int:
    """One extraction; the worker's pid, so the caller knows which workers are ready."""
    _extract(CatalogItem("warm-up", "warm up"))
    return os.getpid()


def _warm_every_worker(executor: ProcessPoolExecutor, workers: int) -> None:
    """Return once every worker has answered a warm-up (or after _WARM_UP_LIMIT_S).

    The pool starts a worker for each submission that finds none idle, so one
    warm-up per worker, submitted together, starts them all; rounds repeat
    until each has answered, as the first one ready may take several."""
    ready: set[int] = set()
    give_up = time.monotonic() + _WARM_UP_LIMIT_S
    while len(ready) < workers and (left := give_up - time.monotonic()) > 0:
        # Waited for with the time left, so a worker that never starts cannot hold a snapshot swap.
        done, waiting = wait([executor.submit(_warm_up) for _ in range(workers)], timeout=left)
        ready.update(f.result() for f in done)
        if waiting:
            break
    if len(ready) < workers:
        log.warning("not every inline extraction worker warmed up in time", extra={"ready": len(ready), "workers": workers})


class _Pool:
    """Worker processes holding one snapshot's vocabulary."""

    def __init__(self, key: str, settings: ExtractionSettings, vocabulary_json: str, workers: int, niceness: int) -> None:
        self.key = key
        # spawn: forking a process that runs gRPC's threads is unsafe.
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(settings, vocabulary_json, niceness),
        )


class InlineExtraction:
    """Extracts inline items' entities in `workers` processes; thread-safe."""

    def __init__(self, settings: ExtractionSettings, workers: int, niceness: int = 0) -> None:
        if workers < 1:
            raise ValueError("inline extraction needs at least one worker process")
        self._settings = settings
        self._workers = workers
        self._niceness = niceness
        self._pool: _Pool | None = None
        self._lock = threading.Lock()
        # Held while a new pool starts, so two callers never start one each.
        self._starting = threading.Lock()

    def use(self, key: str, vocabulary_json: str, warm: bool = True) -> None:
        """Extract with this snapshot's vocabulary from now on (a new pool; `warm` waits until its workers
        have loaded spaCy, so no request pays for that)."""
        with self._starting:
            with self._lock:
                if self._pool is not None and self._pool.key == key:
                    return
            pool = _Pool(key, self._settings, vocabulary_json, self._workers, self._niceness)
            if warm:
                started = time.perf_counter()
                try:
                    _warm_every_worker(pool.executor, self._workers)
                except BrokenProcessPool:
                    log.error("inline extraction workers failed to start; the next request starts new ones")
                    pool.executor.shutdown(wait=False, cancel_futures=True)
                    return
                log.info(
                    "inline extraction warm", extra={"workers": self._workers, "seconds": round(time.perf_counter() - started, 2)}
                )
            with self._lock:
                old, self._pool = self._pool, pool
        if old is not None:
            old.executor.shutdown(wait=False, cancel_futures=True)

    def extract(self, key: str, vocabulary_json: str, items: Sequence[CatalogItem], until: float) -> list[list[Entity] | None]:
        """Entities of each item, None for those not extracted by `until` (monotonic clock)."""
        if not items:
            return []
        started = time.monotonic()
        pool = self._current(key, vocabulary_json)
        # Workers started by this call: their start-up is not the items' time (as a first extraction always was).
        until += time.monotonic() - started
        try:
            futures = [pool.executor.submit(_extract, item) for item in items]
        except BrokenProcessPool:
            self._discard(pool)
            return [None] * len(items)
        wait(futures, timeout=max(0.0, until - time.monotonic()))
        return [self._result(pool, future) for future in futures]

    def worker_pids(self) -> set[int]:
        """Process ids of the current workers (for memory figures and operators)."""
        with self._lock:
            pool = self._pool
        # ProcessPoolExecutor keeps its workers by pid; it offers no public accessor.
        return set(getattr(pool.executor, "_processes", None) or {}) if pool is not None else set()

    def close(self) -> None:
        """Stop the workers (items in flight are dropped)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.executor.shutdown(wait=True, cancel_futures=True)

    def _current(self, key: str, vocabulary_json: str) -> _Pool:
        with self._lock:
            pool = self._pool
        if pool is not None and pool.key != key and self._starting.locked():
            return pool  # new workers are warming up: the previous vocabulary until they take over
        if pool is None or pool.key != key:
            # Not prepared for this snapshot (or none yet): start and wait, as a first extraction always did.
            self.use(key, vocabulary_json)
            with self._lock:
                pool = self._pool
        assert pool is not None
        return pool

    def _result(self, pool: _Pool, future: Future[list[Entity]]) -> list[Entity] | None:
        if not future.done():
            future.cancel()
            return None
        try:
            return future.result()
        except BrokenProcessPool:
            self._discard(pool)
        except Exception as exc:  # one item's failure degrades that item only
            log.warning("inline extraction failed for an item", extra={"error": repr(exc)[:200]})
        return None

    def _discard(self, pool: _Pool) -> None:
        """Forget a broken pool; the next call starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        log.warning("an inline extraction worker died; starting new ones")
        pool.executor.shutdown(wait=False, cancel_futures=True)
