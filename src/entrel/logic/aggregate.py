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

from entrel.config import LogicSettings
from entrel.logic.tnorms import namespace, tnorm

__all__ = ["COVERAGES", "NEUTRAL", "Aggregate", "Aggregator", "Weights", "contradiction", "match"]

# The score of an entity the query says nothing about; pads rows and stands in for unscored pairs.
NEUTRAL = 0.5
COVERAGES = ("max", "noisy_or")


def match(scores: Any) -> Any:
    """How far each entity is something the query asks for: 0 at neutral and below, 1 at a full match."""
    xp = namespace(scores)
    return xp.clip(2.0 * scores - 1.0, 0.0, 1.0)


def contradiction(scores: Any) -> Any:
    """How far each entity contradicts the query: 0 at neutral and above, 1 at a full contradiction."""
    xp = namespace(scores)
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


@dataclass(frozen=True)
class _Parts:
    """The terms of one aggregation (any array namespace), kept so explaining reuses them."""

    matched: Any
    coverage: Any
    # Per slot: (1 - contradiction) ** its type weight.
    compatible: Any
    scores: Any


def _parts(scores: Any, weights: Any, coverage_weight: float, coverage_kind: str, floor: float, tnorm_name: str) -> _Parts:
    """Item scores (any array namespace): T(covered ** w_cov, (1 - contradiction) ** w_type, ...)."""
    xp = namespace(scores)
    matched = match(scores)
    if coverage_kind == "max":
        coverage = xp.max(matched, axis=-1)
    else:
        coverage = 1.0 - xp.prod(1.0 - matched, axis=-1)
    covered = (floor + (1.0 - floor) * coverage) ** coverage_weight
    compatible = (1.0 - contradiction(scores)) ** weights
    return _Parts(matched, coverage, compatible, tnorm(tnorm_name)(xp.concat([covered[..., None], compatible], axis=-1)))


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
        return self._parts(scores, type_weights).scores

    def _parts(self, scores: Any, type_weights: Any) -> _Parts:
        return _parts(scores, type_weights, self.weights.coverage, self.coverage_kind, self.coverage_floor, self.tnorm_name)

    def __call__(
        self, scores: np.ndarray, counts: np.ndarray, type_weights: np.ndarray | None = None, explain: bool | np.ndarray = False
    ) -> Aggregate:
        """Aggregate `scores` (items x entities, padded with NEUTRAL past each row's `counts`).

        `type_weights` has the shape of `scores` (each slot's entity-type weight); None weighs all 1.
        `explain` is True for every row, or a mask of the rows to explain (a batch where only
        some groups asked): the others get lift 0, no breaker and no cover. Rows are
        independent, so a row scores the same alone, in any batch, and at any padded width.
        """
        if scores.shape[1] == 0:  # no item has an entity: one neutral column keeps every reduction defined
            scores = np.full((scores.shape[0], 1), NEUTRAL, dtype=np.float32)
        # Unweighted: the scalar 1.0, so ``x ** 1.0`` takes numpy's shortcut (a copy), not a pow per slot.
        weights: np.ndarray | float = 1.0
        if type_weights is not None and type_weights.shape == scores.shape:
            weights = type_weights
        empty = counts == 0
        parts = self._parts(scores, weights)
        item_scores = np.where(empty, self.prior, parts.scores).astype(np.float32)
        coverage = parts.coverage.astype(np.float32, copy=False)
        compatibility = np.multiply.reduce(parts.compatible, axis=1).astype(np.float32, copy=False)
        if isinstance(explain, bool) and not explain:
            return Aggregate(item_scores, empty, coverage, compatibility)
        lift = np.zeros(scores.shape, dtype=np.float32)
        breaker = np.full(len(scores), -1, dtype=np.int64)
        cover = np.full(len(scores), -1, dtype=np.int64)
        picked = slice(None) if isinstance(explain, bool) else np.asarray(explain, dtype=bool)
        if not isinstance(picked, slice) and not picked.any():
            return Aggregate(item_scores, empty, coverage, compatibility, lift, breaker, cover)
        # Padded columns past the explained rows' widest count change nothing: left out of the (quadratic) lift.
        width = max(1, int(counts[picked].max(initial=0)))
        sub_weights = weights[picked, :width] if isinstance(weights, np.ndarray) else weights
        sub_lift = self._lift(scores[picked, :width], sub_weights, item_scores[picked])
        sub_empty, sub_scores, matched = empty[picked], item_scores[picked], parts.matched[picked, :width]
        sub_lift[sub_empty] = 0.0
        lift[picked, :width] = sub_lift
        best = np.argmax(sub_lift, axis=1)
        breaking = (sub_scores < self.match_threshold) & ~sub_empty
        breaking &= np.take_along_axis(sub_lift, best[:, None], axis=1)[:, 0] > 0
        breaker[picked] = np.where(breaking, best, -1)
        best = np.argmax(matched, axis=1)
        covering = (np.take_along_axis(matched, best[:, None], axis=1)[:, 0] > 0) & ~sub_empty
        cover[picked] = np.where(covering, best, -1)
        return Aggregate(item_scores, empty, coverage, compatibility, lift, breaker, cover)

    def _lift(self, scores: np.ndarray, type_weights: np.ndarray | float, item_scores: np.ndarray) -> np.ndarray:
        """Item score with entity j's contradiction lifted (its score raised to neutral) minus the score, for every j."""
        m = scores.shape[1]
        repeated = np.repeat(scores[:, None, :], m, axis=1)
        diagonal = np.arange(m)
        repeated[:, diagonal, diagonal] = np.maximum(repeated[:, diagonal, diagonal], NEUTRAL)
        weights = np.repeat(type_weights[:, None, :], m, axis=1) if isinstance(type_weights, np.ndarray) else type_weights
        return (self.combine(repeated, weights) - item_scores[:, None]).astype(np.float32)
