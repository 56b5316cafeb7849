"""What a scoring call answers: per item its score, status and halves, and per entity why.

Answers are held as columns (:class:`ItemColumns`); per-item objects are
built only when asked for (:attr:`ScoreResult.items`), since the gRPC
layer encodes the columns directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from entrel.catalog import Entity

__all__ = ["STATUS_OF_CODE", "EntityScore", "ItemColumns", "ItemResult", "ItemStatus", "Role", "ScoreResult", "Source"]


class Source(StrEnum):
    CACHED = "cached"
    LIVE = "live"
    PRIOR = "prior"
    # Set by an operator (entrel override set); the explanation carries its reason.
    OVERRIDE = "override"


class Role(StrEnum):
    """What an entity is to the query, read off its score (see entrel.logic)."""

    MATCHES = "matches"
    NEUTRAL = "neutral"
    CONTRADICTS = "contradicts"


class ItemStatus(StrEnum):
    OK = "ok"
    UNKNOWN_ITEM = "unknown_item"
    NO_ENTITIES = "no_entities"
    DEGRADED = "degraded"


# The status of each item status code, by severity (the engine's codes index it; the gRPC layer maps them to its enum).
STATUS_OF_CODE = (ItemStatus.OK, ItemStatus.UNKNOWN_ITEM, ItemStatus.NO_ENTITIES, ItemStatus.DEGRADED)


@dataclass(frozen=True)
class EntityScore:
    entity: Entity
    score: float
    source: Source
    lift: float
    breaks_match: bool
    role: Role
    # The entity that covers the query best.
    covers: bool
    # Its type's weight in the compatibility half.
    weight: float
    note: str = ""
    # Why an operator set this score (source OVERRIDE).
    reason: str = ""


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    score: float
    status: ItemStatus
    message: str = ""
    title: str = ""
    entities: list[EntityScore] | None = None
    # The two halves of the entity score (see entrel.logic).
    coverage: float = 0.0
    compatibility: float = 1.0
    # score = (1 - w) * entity_score + w * similarity (w: ScoreResult.similarity_weight),
    # times 1 - ScoreResult.exclusion_penalty when the title names what the query excludes.
    entity_score: float = 0.0
    similarity: float = 0.0
    # The excluded term ("without X") the item's title names; "" when none.
    excluded: str = ""


@dataclass(frozen=True, eq=False)
class ItemColumns:
    """A group's answer per item, as arrays in request order: what :class:`ItemResult` holds, without the objects."""

    item_ids: Sequence[str]
    scores: np.ndarray
    # Codes into STATUS_OF_CODE.
    statuses: np.ndarray
    # Codes into `message_texts`.
    messages: np.ndarray
    message_texts: Sequence[str]
    coverage: np.ndarray
    compatibility: np.ndarray
    entity_scores: np.ndarray
    similarity: np.ndarray
    # None when no item's title was read (no explanation asked, no exclusion in the query): all "".
    titles: Sequence[str] | None = None
    # None when the query excludes nothing (or the penalty is 0): all "".
    excluded: Sequence[str] | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    def results(self, entities: Sequence[list[EntityScore] | None] | None = None) -> list[ItemResult]:
        """One ItemResult per item (with `entities[i]` when given)."""
        n = len(self.item_ids)
        titles, excluded = self.titles or [""] * n, self.excluded or [""] * n
        texts = self.message_texts
        statuses = [STATUS_OF_CODE[c] for c in self.statuses.tolist()]
        return [
            ItemResult(item_id, score, status, texts[m], title, e, cov, comp, es, sim, ex)
            for item_id, score, status, m, title, e, cov, comp, es, sim, ex in zip(
                self.item_ids,
                self.scores.tolist(),
                statuses,
                self.messages.tolist(),
                titles,
                entities or [None] * n,
                self.coverage.tolist(),
                self.compatibility.tolist(),
                self.entity_scores.tolist(),
                self.similarity.tolist(),
                excluded,
                strict=True,
            )
        ]


@dataclass(eq=False)
class ScoreResult:
    snapshot_id: str
    model_fingerprint: str
    tnorm: str
    normalized_query: str
    query_cached: bool
    cache_hits: int = 0
    cache_misses: int = 0
    live_scored_pairs: int = 0
    prior_pairs: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    # 0 when the term is off or the snapshot holds no item vectors.
    similarity_weight: float = 0.0
    query_vector_cached: bool = False
    # What an item loses for naming a term the query excludes (entrel.logic.exclusion).
    exclusion_penalty: float = 0.0
    # The answer per item as arrays (always set by the engine); `items` builds objects from it.
    columns: ItemColumns | None = None
    # Explanations: each item's entities, built for a group that asked for them.
    explained: list[list[EntityScore]] | None = None
    _items: list[ItemResult] | None = field(default=None, repr=False)

    @property
    def items(self) -> list[ItemResult]:
        """The answer as one ItemResult per item, built on first use (the server encodes `columns` instead)."""
        if self._items is None:
            self._items = self.columns.results(self.explained) if self.columns is not None else []
        return self._items
