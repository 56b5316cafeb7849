"""What one load run measured, summarised: percentiles, throughput, errors, hit rate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Reply", "Sample", "hit_rate", "percentiles", "summarize"]

_STATISTICS = ("p50", "p95", "p99", "mean", "max")


@dataclass(frozen=True)
class Reply:
    """What the server (or the naive scorer) answered to one request."""

    # gRPC status name; "OK" on success.
    code: str
    # From the response metadata (None for the naive way and for errors).
    server_ms: float | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    live_scored_pairs: int = 0
    prior_pairs: int = 0


@dataclass(frozen=True)
class Sample:
    # Which request of the run this was (its position in the sending order).
    index: int
    reply: Reply
    # From the request's (scheduled) start to its answer, on the client.
    latency_ms: float
    # Open loop: how late the generator sent it after its scheduled arrival.
    lag_ms: float = 0.0


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99, mean and max (a single stall, e.g. a full garbage collection, shows in max first)."""
    if not values:
        return dict.fromkeys(_STATISTICS)
    array = np.asarray(values, dtype=np.float64)
    figures = [*np.percentile(array, [50, 95, 99]), array.mean(), array.max()]
    return {name: round(float(value), 3) for name, value in zip(_STATISTICS, figures, strict=True)}


def hit_rate(samples: Sequence[Sample]) -> float | None:
    """cache_hits / (cache_hits + cache_misses) over answered requests: per (item, entity) lookup."""
    hits = sum(s.reply.cache_hits for s in samples if s.reply.code == "OK")
    misses = sum(s.reply.cache_misses for s in samples if s.reply.code == "OK")
    return round(hits / (hits + misses), 4) if hits + misses else None


def summarize(samples: Sequence[Sample], wall_s: float) -> dict[str, Any]:
    """Latencies over answered requests only: a fast refusal must not flatter the percentiles."""
    ok = [s for s in samples if s.reply.code == "OK"]
    live_scored = sum(s.reply.live_scored_pairs for s in ok)
    return {
        "requests": len(samples),
        "ok": len(ok),
        "errors": dict(Counter(s.reply.code for s in samples if s.reply.code != "OK")),
        "wall_s": round(wall_s, 3),
        "throughput_rps": round(len(ok) / wall_s, 2) if wall_s > 0 else 0.0,
        "latency_ms": percentiles([s.latency_ms for s in ok]),
        "server_ms": percentiles([s.reply.server_ms for s in ok if s.reply.server_ms is not None]),
        "hit_rate": hit_rate(ok),
        # Answered, but some pairs got the prior (live scoring missed the deadline).
        "degraded_requests": sum(1 for s in ok if s.reply.prior_pairs),
        "prior_pairs": sum(s.reply.prior_pairs for s in ok),
        # Live pairs delivered in answers (work for requests the client gave up on is not counted).
        "live_scored_pairs_per_s": round(live_scored / wall_s, 1) if wall_s > 0 else 0.0,
        "send_lag_ms": percentiles([s.lag_ms for s in samples]),
    }
