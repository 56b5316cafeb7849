"""Frequent queries: the ones worth precomputing.

Reads the query log (CSV/Parquet/JSONL with a ``query`` column and an
optional ``count`` column; without counts every row is one search), adds
the live misses the server logged, normalises with the serving code and
keeps the top-k by traffic, stopping early once the configured share of
traffic is covered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import polars as pl

from entrel.cache.misslog import MissSummary
from entrel.catalog.reader import CatalogError, read_table
from entrel.config import NightlySettings
from entrel.text import normalize

__all__ = ["MinedQueries", "mine_queries", "read_query_log"]


@dataclass(frozen=True)
class MinedQueries:
    # (normalised query, count), most frequent first.
    queries: list[tuple[str, int]]
    distinct_in_log: int
    total_traffic: int
    covered_traffic: int

    @property
    def coverage(self) -> float:
        return self.covered_traffic / self.total_traffic if self.total_traffic else 0.0


def read_query_log(path: str) -> Counter[str]:
    """Traffic per normalised query; blank queries are dropped."""
    frame = read_table(path, what="query log")
    if "query" not in frame.columns:
        raise CatalogError(f"query log {path} has no 'query' column; its columns are: {', '.join(frame.columns)}")
    counts = pl.col("count").cast(pl.Int64, strict=False).fill_null(1) if "count" in frame.columns else pl.lit(1)
    traffic: Counter[str] = Counter()
    for query, count in frame.select(pl.col("query").cast(pl.String).fill_null(""), counts).iter_rows():
        key = normalize(query)
        if key and count > 0:
            traffic[key] += count
    return traffic


def mine_queries(settings: NightlySettings, misses: MissSummary | None = None) -> MinedQueries:
    """The queries to precompute, most frequent first."""
    traffic = read_query_log(settings.query_log)
    if misses is not None:
        traffic.update(misses.queries)
    total = sum(traffic.values())
    chosen: list[tuple[str, int]] = []
    covered = 0
    # Ties broken by text so the choice is deterministic.
    for query, count in sorted(traffic.items(), key=lambda qc: (-qc[1], qc[0])):
        if len(chosen) >= settings.top_k_queries or count < settings.min_query_count:
            break
        if total and covered / total >= settings.traffic_coverage:
            break
        chosen.append((query, count))
        covered += count
    return MinedQueries(chosen, len(traffic), total, covered)
