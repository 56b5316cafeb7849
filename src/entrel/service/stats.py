"""This server's counters since start-up, for the Admin status call.

The Prometheus metrics are process-wide and need a scraper; these belong
to one server and answer `entrel status` directly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["ServingStats", "StatsSnapshot"]


@dataclass(frozen=True)
class StatsSnapshot:
    requests: int
    cache_hits: int
    cache_misses: int
    uptime_s: float

    @property
    def hit_rate(self) -> float:
        """Share of (item, entity) lookups answered from the snapshot; 0 before any."""
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else 0.0


class ServingStats:
    """Thread-safe counters of scoring calls and cache lookups."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._requests = 0
        self._hits = 0
        self._misses = 0

    def record(self, cache_hits: int = 0, cache_misses: int = 0) -> None:
        """Count one answered call and its lookups (a failed call looked nothing up)."""
        with self._lock:
            self._requests += 1
            self._hits += cache_hits
            self._misses += cache_misses

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(self._requests, self._hits, self._misses, time.monotonic() - self._started)
