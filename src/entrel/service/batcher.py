"""Merges live (query, entity) misses of concurrent requests into model batches.

One worker thread owns the model. Requests submit pairs and get futures;
the worker waits at most `max_wait_s` to fill a batch, scores it (the
scorer sorts by length and cuts token-budget batches), and resolves the
futures. An identical pair already queued or being scored is shared, not
queued twice.

Load is shed at once (:class:`Overloaded`) rather than letting latency grow
without bound: when `capacity` pairs are pending, or when the backlog ahead
of a request would take longer to score (at the measured rate) than the
request has left before its deadline. Pairs whose every waiter's deadline
has passed are dropped before scoring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from entrel.errors import EntrelError
from entrel.scoring import Scorer
from entrel.service import metrics

__all__ = ["DeadlineExceeded", "MicroBatcher", "Overloaded"]

log = logging.getLogger(__name__)

Pair = tuple[str, str]


class Overloaded(EntrelError, RuntimeError):
    """The live queue is full; the caller should back off."""


class DeadlineExceeded(EntrelError, TimeoutError):
    """Every request waiting for a pair gave up before it was scored."""


@dataclass
class _Job:
    pair: Pair
    deadline: float
    future: Future[float] = field(default_factory=Future)


class MicroBatcher:
    """Shared live scoring for all requests of a server."""

    def __init__(self, scorer: Scorer, max_batch_pairs: int, max_wait_s: float, capacity: int) -> None:
        self._scorer = scorer
        self._max_batch = max_batch_pairs
        self._max_wait = max_wait_s
        self._capacity = capacity
        self._lock = threading.Condition()
        self._queue: deque[_Job] = deque()
        # Queued or being scored, by pair: the de-duplication table.
        self._inflight: dict[Pair, _Job] = {}
        self._closed = False
        # Scoring rate in pairs/s (moving average over batches); None until measured.
        self._rate: float | None = None
        self._worker = threading.Thread(target=self._run, name="entrel-batcher", daemon=True)
        self._worker.start()

    def pending(self) -> int:
        with self._lock:
            return len(self._inflight)

    def submit(self, pairs: Sequence[Pair], deadline: float) -> list[Future[float]]:
        """Futures of the scores of `pairs` (monotonic-clock `deadline`); raises Overloaded."""
        with self._lock:
            if self._closed:
                raise Overloaded("the live scorer is shutting down")
            fresh = {p for p in pairs if p not in self._inflight}
            if fresh:
                self._admit(len(fresh), deadline)
            futures = []
            for pair in pairs:
                job = self._inflight.get(pair)
                if job is None:
                    job = self._inflight[pair] = _Job(pair, deadline)
                    self._queue.append(job)
                else:
                    job.deadline = max(job.deadline, deadline)
                    metrics.DEDUPED_PAIRS.inc()
                futures.append(job.future)
            metrics.QUEUE_DEPTH.set(len(self._inflight))
            self._lock.notify()
            return futures

    def _admit(self, fresh: int, deadline: float) -> None:
        """Raise Overloaded when `fresh` more pairs cannot be taken on (caller holds the lock)."""
        backlog = len(self._inflight)
        if backlog + fresh > self._capacity:
            reason = f"live scoring queue is full ({backlog} pending pairs, capacity {self._capacity})"
        elif self._rate and backlog / self._rate > deadline - time.monotonic():
            reason = (
                f"live scoring backlog of {backlog} pairs needs about {backlog / self._rate:.2f} s "
                f"at {self._rate:.0f} pairs/s, past this request's deadline"
            )
        else:
            return
        metrics.SHED_REQUESTS.inc()
        raise Overloaded(reason)

    def _take_batch(self) -> list[_Job] | None:
        with self._lock:
            while not self._queue and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            fill_until = time.monotonic() + self._max_wait
            while len(self._queue) < self._max_batch and not self._closed:
                remaining = fill_until - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            now = time.monotonic()
            batch: list[_Job] = []
            while self._queue and len(batch) < self._max_batch:
                job = self._queue.popleft()
                if job.deadline <= now:
                    del self._inflight[job.pair]
                    job.future.set_exception(DeadlineExceeded("deadline passed before scoring"))
                    metrics.EXPIRED_PAIRS.inc()
                else:
                    batch.append(job)
            return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            if not batch:
                continue
            started = time.perf_counter()
            try:
                scores = self._scorer.score([job.pair for job in batch])
            except Exception as exc:  # a model failure degrades these pairs, not the server
                log.exception("live scoring failed", extra={"pairs": len(batch)})
                outcome: list[float | BaseException] = [exc] * len(batch)
            else:
                outcome = [float(s) for s in scores]
            elapsed = time.perf_counter() - started
            metrics.LIVE_BATCH_PAIRS.observe(len(batch))
            metrics.LIVE_BATCH_SECONDS.observe(elapsed)
            with self._lock:
                rate = len(batch) / max(elapsed, 1e-6)
                self._rate = rate if self._rate is None else 0.8 * self._rate + 0.2 * rate
                for job, result in zip(batch, outcome, strict=True):
                    del self._inflight[job.pair]
                    if isinstance(result, BaseException):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)
                metrics.QUEUE_DEPTH.set(len(self._inflight))

    def close(self) -> None:
        """Stop the worker; pairs still queued fail with Overloaded."""
        with self._lock:
            self._closed = True
            for job in self._queue:
                job.future.set_exception(Overloaded("the live scorer is shutting down"))
                self._inflight.pop(job.pair, None)
            self._queue.clear()
            self._lock.notify_all()
        self._worker.join(timeout=30)
