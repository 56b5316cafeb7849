"""Training examples: graded item labels, and query-entity pairs generated from the catalog."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from entrel.catalog import Entity, EntityType
from entrel.catalog.reader import CatalogError, read_table
from entrel.text import normalize
from offline.training.trainer import Example

__all__ = ["ITEM_TARGETS", "Label", "item_examples", "label_entity_examples", "read_labels", "synthetic_entity_examples"]

MAX_GRADE = 3
# Target of an item's aggregated score by grade. With a product t-norm a
# substitute's target is what its one contradicting entity learns to score,
# so it must sit near 0, not at 2/3: on held-out demo queries these targets
# gave nDCG@10 0.920, linear grade/3 targets 0.865 (pretraining alone 0.898).
ITEM_TARGETS: Mapping[int, float] = {3: 1.0, 2: 0.1, 1: 0.01, 0: 0.0}
# Types a synthetic query may state, with how often it states each.
_STATED = {
    EntityType.PRODUCT_TYPE: 0.9,
    EntityType.BRAND: 0.3,
    EntityType.COLOR: 0.4,
    EntityType.MATERIAL: 0.3,
    EntityType.SIZE: 0.2,
    EntityType.AUDIENCE: 0.4,
    EntityType.STYLE: 0.2,
}
# Word order of a synthetic query, e.g. "women acme red leather office chair large".
_QUERY_ORDER = (
    EntityType.AUDIENCE,
    EntityType.BRAND,
    EntityType.COLOR,
    EntityType.MATERIAL,
    EntityType.STYLE,
    EntityType.PRODUCT_TYPE,
    EntityType.SIZE,
)


@dataclass(frozen=True)
class Label:
    query: str
    item_id: str
    # 0 irrelevant, 1 complement, 2 substitute, 3 exact.
    grade: int


def read_labels(path: str) -> list[Label]:
    """Graded labels from a table with columns query, item_id, grade (0..3)."""
    frame = read_table(path, what="labels")
    missing = {"query", "item_id", "grade"} - set(frame.columns)
    if missing:
        raise CatalogError(f"labels {path} lack columns {sorted(missing)}; they have {frame.columns}")
    rows = frame.select(pl.col("query").cast(pl.String), pl.col("item_id").cast(pl.String), pl.col("grade").cast(pl.Int64))
    labels = [Label(q, i, g) for q, i, g in rows.iter_rows()]
    bad = [lab for lab in labels if not 0 <= lab.grade <= MAX_GRADE]
    if bad:
        raise CatalogError(f"labels {path}: grades must be 0..{MAX_GRADE}, e.g. {bad[0]}")
    return labels


def item_examples(labels: Sequence[Label], entities_by_item: Mapping[str, Sequence[Entity]]) -> list[Example]:
    """One example per labelled (query, item) that has entities, with its grade's target."""
    out = []
    for label in labels:
        entities = entities_by_item.get(label.item_id)
        if entities:
            query = normalize(label.query)
            out.append(Example(query, tuple(e.render() for e in entities), ITEM_TARGETS[label.grade], query))
    return out


def synthetic_entity_examples(
    entities_per_item: Sequence[Sequence[Entity]], n_queries: int, seed: int = 13, negatives_per_type: int = 3
) -> list[Example]:
    """Query-entity pairs with known compatibility, generated from the catalog's own entities.

    For a random item, a query states some of its entities. Then:
    its own entities are compatible (1); an entity of a stated type with
    another value contradicts it (0); an entity of a type the query does not
    state, taken from another item, is compatible too (1): entities the
    query says nothing about must not break the match.
    """
    rng = random.Random(seed)
    by_type: dict[EntityType, list[Entity]] = defaultdict(list)
    for entity in sorted({e for es in entities_per_item for e in es}):
        by_type[entity.type].append(entity)
    usable = [es for es in entities_per_item if any(e.type in _STATED for e in es)]
    out: list[Example] = []
    for _ in range(n_queries if usable else 0):
        entities = rng.choice(usable)
        own = {e.type: e for e in entities if e.type in _STATED}
        stated = {t: e for t, e in own.items() if rng.random() < _STATED[t]} or dict([rng.choice(list(own.items()))])
        query = " ".join(stated[t].text for t in _QUERY_ORDER if t in stated)
        group = f"synthetic:{query}"
        pairs = [(e, 1.0) for e in entities]
        for t, entity in stated.items():
            others = [o for o in by_type[t] if o.text != entity.text]
            pairs.extend((o, 0.0) for o in rng.sample(others, min(negatives_per_type, len(others))))
        for t in _STATED:
            if t not in stated and by_type[t]:
                pairs.append((rng.choice(by_type[t]), 1.0))
        out.extend(Example(query, (e.render(),), target, group) for e, target in pairs)
    return out


def label_entity_examples(labels: Sequence[Label], entities_by_item: Mapping[str, Sequence[Entity]]) -> list[Example]:
    """Query-entity pairs of real queries, read off graded item labels.

    An entity of an exact item fits its query (1). An entity found only on
    the query's irrelevant items (never on an exact, substitute or
    complement one) is taken to be what made them irrelevant (0). Entities
    of the grades in between teach nothing certain and are left out.
    """
    best: dict[tuple[str, str], int] = {}
    for label in labels:
        query = normalize(label.query)
        for entity in entities_by_item.get(label.item_id, ()):
            key = (query, entity.render())
            best[key] = max(best.get(key, -1), label.grade)
    return [
        Example(query, (text,), 1.0 if grade == MAX_GRADE else 0.0, query)
        for (query, text), grade in best.items()
        if grade in (0, MAX_GRADE)
    ]
