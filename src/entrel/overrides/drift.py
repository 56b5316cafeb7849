"""How far each override in force is from the model's fresh scores, for the nightly report.

An override pins a score the model may have moved away from since (a new
model, a changed catalog): the nightly job already scores every precomputed
(query, entity) pair, so it compares each override with the pairs it covers
as they stream by, and the report shows which overrides have gone stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from entrel.catalog.entity import Entity, EntityType
from entrel.logic import NEUTRAL
from entrel.overrides.model import ANY_QUERY, Override

__all__ = ["OverrideDrift"]

_TYPE_CODE = {t: i for i, t in enumerate(EntityType)}


@dataclass
class _Tally:
    """The model's scores of the pairs one override covers, against the override's value."""

    pairs: int = 0
    model_sum: float = 0.0
    abs_diff_sum: float = 0.0
    abs_diff_max: float = 0.0

    def add(self, model: np.ndarray, value: float) -> None:
        if not model.size:
            return
        diff = np.abs(model.astype(np.float64) - value)
        self.pairs += int(model.size)
        self.model_sum += float(model.sum())
        self.abs_diff_sum += float(diff.sum())
        self.abs_diff_max = max(self.abs_diff_max, float(diff.max()))


class OverrideDrift:
    """Compares `overrides` with the nightly's fresh scores over `entities` (the snapshot's entity table)."""

    def __init__(self, overrides: Sequence[Override], entities: Sequence[Entity]) -> None:
        self.overrides = list(overrides)
        ids = {e: i for i, e in enumerate(entities)}
        self._types = np.array([_TYPE_CODE[e.type] for e in entities], dtype=np.int16)
        self._tallies = [_Tally() for _ in self.overrides]
        # Per query (or '*'): (entity ids, tally indices) of entity overrides, and (type code, tally index) of ignored types.
        self._by_entity: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._by_type: dict[str, list[tuple[int, int]]] = {}
        entity_lists: dict[str, list[tuple[int, int]]] = {}
        for k, o in enumerate(self.overrides):
            if o.key.ignores_type:
                self._by_type.setdefault(o.key.query, []).append((_TYPE_CODE[o.key.type], k))
            elif (entity_id := ids.get(o.key.entity)) is not None:
                entity_lists.setdefault(o.key.query, []).append((entity_id, k))
        for query, pairs in entity_lists.items():
            pairs.sort()
            self._by_entity[query] = (np.array([i for i, _ in pairs], np.int64), np.array([k for _, k in pairs], np.int64))

    def _value(self, k: int) -> float:
        score = self.overrides[k].score
        return NEUTRAL if score is None else score

    def observe(self, query: str, ids: np.ndarray, scores: np.ndarray) -> None:
        """Tally one precomputed row (entity ids and the model's scores) against the overrides that cover it."""
        for layer in (ANY_QUERY, query):
            if layer in self._by_entity:
                wanted, tallies = self._by_entity[layer]
                pos = np.minimum(np.searchsorted(wanted, ids), wanted.size - 1)
                for row in np.flatnonzero(wanted[pos] == ids).tolist():
                    k = int(tallies[pos[row]])
                    self._tallies[k].add(scores[row : row + 1], self._value(k))
            for code, k in self._by_type.get(layer, ()):
                self._tallies[k].add(scores[self._types[ids] == code], self._value(k))

    def tap(self, rows: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Pass precomputed rows through unchanged, observing each."""
        for query, ids, scores in rows:
            self.observe(query, np.asarray(ids), np.asarray(scores))
            yield query, ids, scores

    def report(self) -> list[dict[str, Any]]:
        """Per override in force: what it says, and the model's fresh scores of the pairs it covers (None: none tonight)."""
        out = []
        for o, tally in zip(self.overrides, self._tallies, strict=True):
            seen = tally.pairs > 0
            out.append(
                {
                    "query": o.key.query,
                    "type": o.key.type.value,
                    "text": o.key.text,
                    "score": o.score if o.score is not None else "ignored (neutral)",
                    "reason": o.reason,
                    "principal": o.principal,
                    "updated_at": o.updated_at,
                    "pairs_scored_tonight": tally.pairs,
                    "model_score_mean": round(tally.model_sum / tally.pairs, 4) if seen else None,
                    "abs_difference_mean": round(tally.abs_diff_sum / tally.pairs, 4) if seen else None,
                    "abs_difference_max": round(tally.abs_diff_max, 4) if seen else None,
                }
            )
        return out
