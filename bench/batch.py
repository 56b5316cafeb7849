"""ScoreBatch against separate ScoreItems calls: the same cached groups, in one call or in one call each.

Rounds alternate which way goes first, so a load spike on the machine
falls on both alike; the ratio of medians is what a caller gains.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from entrel.bench.stats import percentiles
from entrel.bench.workload import BenchRequest
from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["compare"]


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def compare(address: str, requests: Sequence[BenchRequest], groups: int, rounds: int, timeout_s: float) -> dict[str, Any]:
    """Median milliseconds of one ScoreBatch of `groups` requests vs `groups` sequential ScoreItems calls."""
    chosen = [requests[k % len(requests)] for k in range(groups)]
    singles = [pb.ScoreItemsRequest(query=r.query, item_ids=r.item_ids) for r in chosen]
    batch = pb.ScoreBatchRequest(groups=singles)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RelevanceStub(channel)
        answered = stub.ScoreBatch(batch, timeout=timeout_s)
        alone = [stub.ScoreItems(r, timeout=timeout_s) for r in singles]
        same = all(
            np.allclose([i.score for i in a.items], [i.score for i in b.items], atol=1e-4)
            for a, b in zip(answered.groups, alone, strict=True)
        )
        batch_ms: list[float] = []
        separate_ms: list[float] = []
        for k in range(rounds):
            ways = [
                (batch_ms, lambda: stub.ScoreBatch(batch, timeout=timeout_s)),
                (separate_ms, lambda: [stub.ScoreItems(r, timeout=timeout_s) for r in singles]),
            ]
            for samples, call in ways if k % 2 == 0 else ways[::-1]:
                samples.append(_timed(call))
    hits = sum(g.metadata.cache_hits for g in answered.groups)
    lookups = hits + sum(g.metadata.cache_misses for g in answered.groups)
    batch_p50, separate_p50 = float(np.median(batch_ms)), float(np.median(separate_ms))
    return {
        "groups": groups,
        "items_per_group": [len(r.item_ids) for r in chosen],
        "rounds": rounds,
        "hit_rate": round(hits / lookups, 4) if lookups else None,
        "same_scores_as_separate_calls": same,
        "score_batch_ms": percentiles(batch_ms),
        "separate_score_items_ms": percentiles(separate_ms),
        "throughput_batch_over_separate": round(separate_p50 / batch_p50, 2) if batch_p50 else None,
    }
