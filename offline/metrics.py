"""Ranking quality: nDCG@k with graded gains, AUC between two grades, and paired bootstrap intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "ESCI_GAINS",
    "GRADED_GAINS",
    "Interval",
    "auc",
    "mean_ndcg",
    "ndcg_at_k",
    "ndcg_per_query",
    "paired_bootstrap",
]

# Grades: 3 exact, 2 substitute, 1 complement, 0 irrelevant.
GRADED_GAINS: Mapping[int, float] = {3: 3.0, 2: 2.0, 1: 1.0, 0: 0.0}
# The ESCI paper's gains.
ESCI_GAINS: Mapping[int, float] = {3: 1.0, 2: 0.1, 1: 0.01, 0: 0.0}
# Paired bootstrap defaults: enough resamples for stable 2.5/97.5 percentiles.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
# Per query: (scores, grades) of its judged items.
PerQuery = Mapping[str, tuple[Sequence[float], Sequence[int]]]


def ndcg_at_k(scores: Sequence[float], grades: Sequence[int], k: int, gains: Mapping[int, float]) -> float:
    """nDCG@k of one query's items ranked by `scores` (ties broken by input order); 0 when no gain."""
    gain = np.array([gains[g] for g in grades], dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((gain[order] * discounts[: len(order)]).sum())
    ideal = np.sort(gain)[::-1][:k]
    idcg = float((ideal * discounts[: len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def ndcg_per_query(per_query: PerQuery, k: int = 10, gains: Mapping[int, float] = GRADED_GAINS) -> dict[str, float]:
    """nDCG@k of each query: what paired comparisons between methods resample."""
    return {query: ndcg_at_k(s, g, k, gains) for query, (s, g) in per_query.items()}


def mean_ndcg(per_query: PerQuery, k: int = 10, gains: Mapping[int, float] = GRADED_GAINS) -> float:
    """Mean nDCG@k over queries, each given as (scores, grades)."""
    values = list(ndcg_per_query(per_query, k, gains).values())
    return float(np.mean(values)) if values else float("nan")


def auc(per_query: PerQuery, positive: int = 3, negative: int = 0) -> float:
    """Probability that a `positive`-grade item outscores a `negative`-grade one of the same query (ties count half).

    Pairs are pooled over queries; nan when no query has both grades.
    """
    wins = pairs = 0.0
    for scores, grades in per_query.values():
        s, g = np.asarray(scores, dtype=np.float64), np.asarray(grades)
        pos, neg = s[g == positive], s[g == negative]
        if pos.size and neg.size:
            diff = pos[:, None] - neg[None, :]
            wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
            pairs += pos.size * neg.size
    return wins / pairs if pairs else float("nan")


@dataclass(frozen=True)
class Interval:
    """Mean paired difference (A - B) over queries and its bootstrap 95% interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:.3f}, {self.high:.3f}]"


def paired_bootstrap(
    per_query_a: Mapping[str, float],
    per_query_b: Mapping[str, float],
    n: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Mean of per-query differences A - B, with a percentile 95% interval from `n` resamples of the queries.

    Queries (not items) are resampled with replacement because queries are
    the unit a ranking is judged on: two methods scored on the same queries
    differ by chance mostly through which queries were drawn. Both must cover
    the same queries.
    """
    if per_query_a.keys() != per_query_b.keys():
        only = sorted(per_query_a.keys() ^ per_query_b.keys())
        raise ValueError(f"paired comparison needs the same queries on both sides; {len(only)} differ, e.g. {only[:3]}")
    if not per_query_a:
        raise ValueError("paired comparison needs at least one query")
    queries = sorted(per_query_a)
    diffs = np.array([per_query_a[q] - per_query_b[q] for q in queries], dtype=np.float64)
    draws = np.random.default_rng(seed).integers(0, len(diffs), size=(n, len(diffs)))
    means = diffs[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(diffs.mean()), float(low), float(high))
