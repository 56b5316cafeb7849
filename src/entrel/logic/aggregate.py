"""Item scores from entity scores, with what each entity contributed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from entrel.logic.tnorms import PAD, tnorm

__all__ = ["Aggregate", "Aggregator"]


@dataclass(frozen=True)
class Aggregate:
    """Per-item results of one aggregation (arrays indexed by item row)."""

    # Item scores; the prior where an item has no entities.
    scores: np.ndarray
    # True for items without any entity (score is the prior).
    empty: np.ndarray
    # (items x entities) rise of the item score if that entity fitted
    # perfectly; 0 in padded slots. Only computed when explaining.
    lift: np.ndarray | None
    # Column of the entity that breaks the match, -1 when none does.
    breaker: np.ndarray | None


class Aggregator:
    """Combines padded entity-score rows with a t-norm.

    Items with no entity have nothing to judge: they get `prior` and are
    flagged `empty`, rather than the t-norm's vacuous 1.0.

        >>> agg = Aggregator("product", prior=0.5, match_threshold=0.5)
        >>> out = agg(np.array([[0.9, 0.2], [1.0, 1.0]]), np.array([2, 0]), explain=True)
        >>> out.scores.round(2).tolist(), out.empty.tolist(), out.breaker.tolist()
        ([0.18, 0.5], [False, True], [1, -1])
    """

    def __init__(self, tnorm_name: str, prior: float, match_threshold: float) -> None:
        self.tnorm_name = tnorm_name
        self._tnorm = tnorm(tnorm_name)
        self.prior = prior
        self.match_threshold = match_threshold

    def __call__(self, scores: np.ndarray, counts: np.ndarray, explain: bool = False) -> Aggregate:
        """Aggregate `scores` (items x entities, padded with 1.0 past each row's `counts`)."""
        if scores.shape[1] == 0:  # no item has an entity: one identity column keeps every t-norm defined
            scores = np.full((scores.shape[0], 1), PAD, dtype=np.float32)
        empty = counts == 0
        item_scores = np.where(empty, self.prior, self._tnorm(scores)).astype(np.float32)
        if not explain:
            return Aggregate(item_scores, empty, None, None)
        lift = self._lift(scores, item_scores)
        lift[empty] = 0.0
        breaker = np.argmax(lift, axis=1)
        breaking = (item_scores < self.match_threshold) & ~empty
        breaking &= np.take_along_axis(scores, breaker[:, None], axis=1)[:, 0] < self.match_threshold
        return Aggregate(item_scores, empty, lift, np.where(breaking, breaker, -1))

    def _lift(self, scores: np.ndarray, item_scores: np.ndarray) -> np.ndarray:
        """T(row with entity j set to 1) - T(row), for every j at once (any t-norm)."""
        m = scores.shape[1]
        repeated = np.repeat(scores[:, None, :], m, axis=1)
        diagonal = np.arange(m)
        repeated[:, diagonal, diagonal] = PAD
        return (self._tnorm(repeated) - item_scores[:, None]).astype(np.float32)
