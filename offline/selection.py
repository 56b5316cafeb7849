"""Choices by k-fold cross-validation over the training queries, never the test queries.

Twenty validation queries are too few to tell candidates apart (see the
README's Quality section), so a choice (a recipe, a t-norm, a threshold)
is made by k-fold cross-validation over all training queries instead: each
query is held out exactly once, a candidate is fitted on the other folds
and scored on the held-out one, and the candidate with the best mean
held-out nDCG@10 wins. Folds are by query, so no query's items are on
both sides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from entrel.offline.evaluate import EvalContext, Scores, quality
from entrel.offline.training.examples import Label

__all__ = ["FoldScorer", "choose_by_kfold", "kfold"]

log = logging.getLogger(__name__)

# (fit queries, held-out labels) -> scores of every held-out pair.
FoldScorer = Callable[[Sequence[str], list[Label]], Scores]


def kfold(queries: Iterable[str], k: int = 5, seed: int = 0) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """`k` (fit queries, held-out queries) pairs; every query is held out once.

    Deterministic: the distinct queries are sorted, then shuffled by `seed`
    and dealt round-robin into folds (sizes differ by at most one), so the
    order and repetitions of `queries` do not matter. Both sides of each
    pair come back sorted.
    """
    ordered = sorted(set(queries))
    if not 2 <= k <= len(ordered):
        raise ValueError(f"k-fold needs 2 <= k <= the number of queries ({len(ordered)}); got k={k}")
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    held_out = [frozenset(shuffled[fold::k]) for fold in range(k)]
    return [(tuple(q for q in ordered if q not in held), tuple(sorted(held))) for held in held_out]


def choose_by_kfold(
    ctx: EvalContext, candidates: Mapping[str, FoldScorer], *, k: int = 5, seed: int = 0
) -> tuple[str, dict[str, tuple[float, float]]]:
    """The candidate with the best mean held-out nDCG@10 over `k` folds of the training queries (the first on ties),
    and each candidate's (mean, sd over folds).

    Each candidate is called once per fold with the fold's fit queries (it
    may train on their labels: ``ctx.labels_of(fit)``) and the held-out
    queries' labelled pairs, which it must score. Test queries are never
    shown to a candidate.
    """
    folds = kfold(ctx.split.train, k, seed)
    test = set(ctx.split.test)
    assert not any(test & {*fit, *held} for fit, held in folds), "a test query in a fold"
    values: dict[str, tuple[float, float]] = {}
    for name, candidate in candidates.items():
        per_fold = []
        for fit, held in folds:
            labels = ctx.labels_of(held)
            per_fold.append(quality(labels, candidate(fit, labels))["ndcg@10"])
        values[name] = (round(float(np.mean(per_fold)), 4), round(float(np.std(per_fold, ddof=1)), 4))
    best = max(values, key=lambda name: values[name][0])
    log.info("chosen by k-fold", extra={"chosen": best, "k": k, "held_out_ndcg@10": values})
    return best, values
