"""Fitting the aggregation's few weights (coverage kind and weight, per-type weights) on training queries.

The cross-encoder gives one score per (query, entity); how an item's
scores combine is a handful of parameters of :class:`entrel.logic.Aggregator`.
They are fitted by coordinate ascent on mean nDCG@10 over labelled
queries, from entity scores the model did not train on (out-of-fold), and
served as ``--set logic....`` overrides recorded in the model card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from entrel.config import LogicSettings, Settings
from entrel.logic import COVERAGES, NEUTRAL, Aggregator
from entrel.offline.metrics import GRADED_GAINS, mean_ndcg
from entrel.offline.training.examples import Label

__all__ = ["EntityRows", "fit_logic", "item_scores", "logic_overrides"]

# Per judged (query, item): its entities' types and scores.
EntityRows = Mapping[tuple[str, str], tuple[tuple[str, ...], np.ndarray]]
_COVERAGE_WEIGHTS = (0.5, 1.0, 2.0, 4.0)
_TYPE_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
_PASSES = 2


def item_scores(rows: EntityRows, logic: LogicSettings, without_type: str | None = None) -> dict[tuple[str, str], float]:
    """Item scores of `rows` aggregated as `logic` says, optionally leaving one entity type out."""
    keys = list(rows)
    kept = [[(t, s) for t, s in zip(*rows[k], strict=True) if t != without_type] for k in keys]
    width = max((len(r) for r in kept), default=0)
    scores = np.full((len(kept), width), NEUTRAL, dtype=np.float32)
    weights = np.ones_like(scores)
    aggregator = Aggregator.from_settings(logic)
    for i, row in enumerate(kept):
        for j, (type_name, score) in enumerate(row):
            scores[i, j] = score
            weights[i, j] = aggregator.weights.of_type(type_name)
    out = aggregator(scores, np.array([len(r) for r in kept]), weights)
    return dict(zip(keys, out.scores.astype(float).tolist(), strict=True))


def _ndcg(rows: EntityRows, labels: Sequence[Label], logic: LogicSettings) -> float:
    scores = item_scores(rows, logic)
    per_query: dict[str, tuple[list[float], list[int]]] = {}
    for label in labels:
        entry = per_query.setdefault(label.query, ([], []))
        entry[0].append(scores[(label.query, label.item_id)])
        entry[1].append(label.grade)
    return mean_ndcg(per_query, 10, GRADED_GAINS)


def logic_overrides(logic: LogicSettings) -> dict[str, str]:
    """The ``--set`` overrides that serve `logic`'s fitted parameters."""
    out = {
        "logic.coverage": logic.coverage,
        "logic.coverage_weight": str(logic.coverage_weight),
    }
    out |= {f"logic.type_weights.{t}": str(w) for t, w in vars(logic.type_weights).items()}
    return out


def fit_logic(rows: EntityRows, labels: Sequence[Label], settings: Settings) -> tuple[LogicSettings, float]:
    """The coverage kind, coverage weight and type weights with the best mean nDCG@10 on `labels`.

    Coordinate ascent from the configured values over small grids; a
    change is kept only when it raises nDCG (ties keep the simpler, earlier
    value), so with no signal the defaults stand.
    """
    labels = [label for label in labels if (label.query, label.item_id) in rows]
    best = settings.logic
    best_value = _ndcg(rows, labels, best)

    def consider(candidate: Settings) -> None:
        nonlocal best, best_value
        value = _ndcg(rows, labels, candidate.logic)
        if value > best_value + 1e-9:
            best, best_value = candidate.logic, value

    for _ in range(_PASSES):
        current = settings.replace(**logic_overrides(best))
        for coverage in COVERAGES:
            consider(current.replace(**{"logic.coverage": coverage}))
        for weight in _COVERAGE_WEIGHTS:
            consider(settings.replace(**(logic_overrides(best) | {"logic.coverage_weight": str(weight)})))
        for type_name in vars(best.type_weights):
            for weight in _TYPE_WEIGHTS:
                consider(settings.replace(**(logic_overrides(best) | {f"logic.type_weights.{type_name}": str(weight)})))
    return best, best_value
