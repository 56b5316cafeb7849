"""Prometheus metrics of the server (exported when server.metrics_port > 0)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = ["serve_metrics"]

REQUESTS = Counter("entrel_requests_total", "ScoreItems calls by outcome", ["code"])
REQUEST_SECONDS = Histogram(
    "entrel_request_seconds",
    "Server-side ScoreItems latency",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
ITEMS = Counter("entrel_items_total", "Items scored, by status", ["status"])
# Hits and misses count (item, entity) lookups, like the response's cache_hits / cache_misses.
CACHE_HITS = Counter("entrel_cache_hits_total", "(item, entity) lookups answered from the snapshot")
CACHE_MISSES = Counter("entrel_cache_misses_total", "(item, entity) lookups not in the snapshot (scored live or given the prior)")
PRIOR_PAIRS = Counter(
    "entrel_prior_pairs_total", "Distinct (query, entity) pairs answered with the prior (deadline, cap, failure)"
)
LIVE_BATCH_PAIRS = Histogram("entrel_live_batch_pairs", "Pairs per live model batch", buckets=(1, 4, 16, 32, 64, 128, 256, 512))
LIVE_BATCH_SECONDS = Histogram("entrel_live_batch_seconds", "Model time per live batch")
DEDUPED_PAIRS = Counter("entrel_deduped_pairs_total", "Live pairs shared with one already in flight")
EXPIRED_PAIRS = Counter("entrel_expired_pairs_total", "Live pairs dropped because every waiter's deadline passed")
SHED_REQUESTS = Counter("entrel_shed_requests_total", "Requests refused because the live queue was full")
QUEUE_DEPTH = Gauge("entrel_live_queue_pairs", "Live pairs queued or being scored")
MISS_LOG_DROPPED = Counter(
    "entrel_miss_log_dropped_total",
    "Miss log losses: records when its queue was full (queue_full), bytes of old files deleted for its cap (deleted_bytes)",
    ["reason"],
)
SNAPSHOT_SWAPS = Counter("entrel_snapshot_swaps_total", "Snapshots picked up without restart")
AUTH_REFUSED = Counter("entrel_auth_refused_total", "Calls refused for their bearer token, by status", ["code"])
SNAPSHOT_REFUSED = Counter("entrel_snapshot_refused_total", "Snapshots refused (corrupt or other model)")
# Read from the miss-log writer at scrape time (the cache layer knows nothing of metrics).


def serve_metrics(port: int, host: str) -> None:
    """Expose /metrics over HTTP on `port`."""
    start_http_server(port, addr=host)
