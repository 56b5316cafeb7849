"""Ranking quality: nDCG@k with graded gains, and AUC of exact vs irrelevant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["ESCI_GAINS", "GRADED_GAINS", "auc", "mean_ndcg", "ndcg_at_k"]

# Grades: 3 exact, 2 substitute, 1 complement, 0 irrelevant.
GRADED_GAINS: Mapping[int, float] = {3: 3.0, 2: 2.0, 1: 1.0, 0: 0.0}
# The ESCI paper's gains.
ESCI_GAINS: Mapping[int, float] = {3: 1.0, 2: 0.1, 1: 0.01, 0: 0.0}


def ndcg_at_k(scores: Sequence[float], grades: Sequence[int], k: int, gains: Mapping[int, float]) -> float:
    """nDCG@k of one query's items ranked by `scores` (ties broken by input order); 0 when no gain."""
    gain = np.array([gains[g] for g in grades], dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((gain[order] * discounts[: len(order)]).sum())
    ideal = np.sort(gain)[::-1][:k]
    idcg = float((ideal * discounts[: len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def mean_ndcg(
    per_query: Mapping[str, tuple[Sequence[float], Sequence[int]]], k: int = 10, gains: Mapping[int, float] = GRADED_GAINS
) -> float:
    """Mean nDCG@k over queries, each given as (scores, grades)."""
    values = [ndcg_at_k(s, g, k, gains) for s, g in per_query.values()]
    return float(np.mean(values)) if values else float("nan")


def auc(per_query: Mapping[str, tuple[Sequence[float], Sequence[int]]], positive: int = 3, negative: int = 0) -> float:
    """Probability that an exact item outscores an irrelevant one of the same query (ties count half)."""
    wins = pairs = 0.0
    for scores, grades in per_query.values():
        s, g = np.asarray(scores, dtype=np.float64), np.asarray(grades)
        pos, neg = s[g == positive], s[g == negative]
        if pos.size and neg.size:
            diff = pos[:, None] - neg[None, :]
            wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
            pairs += pos.size * neg.size
    return wins / pairs if pairs else float("nan")
