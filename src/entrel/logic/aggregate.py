"""Item scores from entity scores: coverage and compatibility, with what each entity contributed.

An entity's score ``s`` in [0, 1] says how it relates to the query: 1 it
is something the query asks for (*match*), 0.5 the query says nothing
about it (*neutral*), 0 it contradicts the query. So one cached float per
(query, entity) carries both halves of relevance:

* **coverage**: the item has what the query asks for, an existential over
  its entities: the best match degree ``max(2s - 1, 0)`` (or their noisy-OR);
* **compatibility**: no entity contradicts the query; each contradiction
  degree ``max(1 - 2s, 0)`` counts against it.

The item score is the t-norm of ``floor + (1 - floor) * coverage`` and every
``1 - contradiction``, each raised to its weight (``x ** w``: weight 0
ignores a term, weight 1 is the plain t-norm). Neutral entities add
nothing to either half, so a well-described item is not punished for
having more entities, and an item with a few unrelated entities that
contradict nothing does not score high: it covers nothing. The floor
keeps items that cover nothing ordered by their compatibility.

Rows are padded with :data:`NEUTRAL`, which changes neither half. The same
code runs on numpy arrays (serving) and torch tensors (training through
the aggregate) via the array API namespace of its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from entrel.config import LogicSettings
from entrel.logic.tnorms import tnorm

__all__ = ["COVERAGES", "NEUTRAL", "Aggregate", "Aggregator", "Weights", "contradiction", "match"]

# The score of an entity the query says nothing about; pads rows and stands in for unscored pairs.
NEUTRAL = 0.5
COVERAGES = ("max", "noisy_or")


def match(scores: Any) -> Any:
    """How far each entity is something the query asks for: 0 at neutral and below, 1 at a full match."""
    xp = array_namespace(scores)
    return xp.clip(2.0 * scores - 1.0, 0.0, 1.0)


def contradiction(scores: Any) -> Any:
    """How far each entity contradicts the query: 0 at neutral and above, 1 at a full contradiction."""
    xp = array_namespace(scores)
    return xp.clip(1.0 - 2.0 * scores, 0.0, 1.0)


@dataclass(frozen=True)
class Weights:
    """The aggregation's few learnable parameters (fitted on training folds, see the model card)."""

    # Exponent of the coverage term.
    coverage: float = 1.0
    # Exponent of each entity type's compatibility terms; types not named weigh 1.
    types: Mapping[str, float] | None = None

    def of_type(self, type_name: str) -> float:
        return float((self.types or {}).get(type_name, 1.0))


@dataclass(frozen=True)
class Aggregate:
    """Per-item results of one aggregation (arrays indexed by item row)."""

    # Item scores; the prior where an item has no entities.
    scores: np.ndarray
    # True for items without any entity (score is the prior).
    empty: np.ndarray
    # Best match degree over the item's entities (noisy-OR when so configured).
    coverage: np.ndarray
    # Product of the weighted compatibility terms.
    compatibility: np.ndarray
    # Only computed when explaining:
    # (items x entities) rise of the item score if that entity's contradiction were lifted; 0 in padded slots.
    lift: np.ndarray | None = None
    # Column of the entity that breaks the match, -1 when none does.
    breaker: np.ndarray | None = None
    # Column of the entity that covers the query best, -1 when none matches.
    cover: np.ndarray | None = None


def _combine(scores: Any, weights: Any, coverage_weight: float, coverage_kind: str, floor: float, tnorm_name: str) -> Any:
    """Item scores (any array namespace): T(covered ** w_cov, (1 - contradiction) ** w_type, ...)."""
    xp = array_namespace(scores)
    matched = match(scores)
    if coverage_kind == "max":
        coverage = xp.max(matched, axis=-1)
    else:
        coverage = 1.0 - xp.prod(1.0 - matched, axis=-1)
    covered = (floor + (1.0 - floor) * coverage) ** coverage_weight
    compatible = (1.0 - contradiction(scores)) ** weights
    return tnorm(tnorm_name)(xp.concat([covered[..., None], compatible], axis=-1))


class Aggregator:
    """Combines padded entity-score rows into item scores by coverage and compatibility.

    Items with no entity have nothing to judge: they get `prior` and are
    flagged `empty`.

        >>> agg = Aggregator("product", prior=0.5, match_threshold=0.5)
        >>> scores = np.array([[0.95, 0.5, 0.1], [0.95, 0.5, 0.5], [0.5, 0.5, 0.5]], dtype=np.float32)
        >>> out = agg(scores, np.array([3, 2, 0]), explain=True)
        >>> [round(x, 2) for x in out.scores.tolist()], out.breaker.tolist(), out.cover.tolist()
        ([0.18, 0.91, 0.5], [2, -1, -1], [0, 0, -1])
    """

    def __init__(
        self,
        tnorm_name: str,
        prior: float,
        match_threshold: float,
        *,
        coverage: str = "max",
        coverage_floor: float = 0.1,
        weights: Weights | None = None,
    ) -> None:
        if coverage not in COVERAGES:
            raise ValueError(f"unknown coverage {coverage!r}; choose one of {', '.join(COVERAGES)}")
        tnorm(tnorm_name)  # fail early on an unknown name
        self.tnorm_name = tnorm_name
        self.prior = prior
        self.match_threshold = match_threshold
        self.coverage_kind = coverage
        self.coverage_floor = coverage_floor
        self.weights = weights or Weights()

    @classmethod
    def from_settings(cls, logic: LogicSettings) -> Aggregator:
        """The aggregator the `[logic]` settings describe."""
        return cls(
            logic.tnorm,
            logic.unjudged_score,
            logic.match_threshold,
            coverage=logic.coverage,
            coverage_floor=logic.coverage_floor,
            weights=Weights(logic.coverage_weight, dict(vars(logic.type_weights))),
        )

    def combine(self, scores: Any, type_weights: Any) -> Any:
        """Item scores of padded rows, differentiable on torch tensors (training uses this)."""
        return _combine(scores, type_weights, self.weights.coverage, self.coverage_kind, self.coverage_floor, self.tnorm_name)

    def __call__(
        self, scores: np.ndarray, counts: np.ndarray, type_weights: np.ndarray | None = None, explain: bool = False
    ) -> Aggregate:
        """Aggregate `scores` (items x entities, padded with NEUTRAL past each row's `counts`).

        `type_weights` has the shape of `scores` (each slot's entity-type weight); None weighs all 1.
        """
        if scores.shape[1] == 0:  # no item has an entity: one neutral column keeps every reduction defined
            scores = np.full((scores.shape[0], 1), NEUTRAL, dtype=np.float32)
        if type_weights is None or type_weights.shape != scores.shape:
            type_weights = np.ones_like(scores)
        empty = counts == 0
        item_scores = np.where(empty, self.prior, self.combine(scores, type_weights)).astype(np.float32)
        matched = match(scores)
        coverage = (matched.max(axis=1) if self.coverage_kind == "max" else 1.0 - np.prod(1.0 - matched, axis=1)).astype(
            np.float32
        )
        compatibility = np.prod((1.0 - contradiction(scores)) ** type_weights, axis=1).astype(np.float32)
        if not explain:
            return Aggregate(item_scores, empty, coverage, compatibility)
        lift = self._lift(scores, type_weights, item_scores)
        lift[empty] = 0.0
        breaker = np.argmax(lift, axis=1)
        breaking = (item_scores < self.match_threshold) & ~empty
        breaking &= np.take_along_axis(lift, breaker[:, None], axis=1)[:, 0] > 0
        cover = np.argmax(matched, axis=1)
        covering = (np.take_along_axis(matched, cover[:, None], axis=1)[:, 0] > 0) & ~empty
        return Aggregate(
            item_scores,
            empty,
            coverage,
            compatibility,
            lift,
            np.where(breaking, breaker, -1),
            np.where(covering, cover, -1),
        )

    def _lift(self, scores: np.ndarray, type_weights: np.ndarray, item_scores: np.ndarray) -> np.ndarray:
        """Item score with entity j's contradiction lifted (its score raised to neutral) minus the score, for every j."""
        m = scores.shape[1]
        repeated = np.repeat(scores[:, None, :], m, axis=1)
        diagonal = np.arange(m)
        repeated[:, diagonal, diagonal] = np.maximum(repeated[:, diagonal, diagonal], NEUTRAL)
        weights = np.repeat(type_weights[:, None, :], m, axis=1)
        return (self.combine(repeated, weights) - item_scores[:, None]).astype(np.float32)
