"""Training examples: graded item labels, and query-entity pairs generated from the catalog."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from entrel.catalog import Entity, EntityType
from entrel.catalog.reader import CatalogError, read_table
from entrel.offline.training.trainer import Example
from entrel.text import normalize

__all__ = [
    "CONTRADICT",
    "ITEM_TARGETS",
    "MATCH",
    "NEUTRAL",
    "SUBSTITUTE",
    "Label",
    "is_stated",
    "item_example",
    "item_examples",
    "label_entity_examples",
    "product_type_outcome",
    "pseudo_queries",
    "read_labels",
    "synthetic_entity_examples",
    "words",
]

MAX_GRADE = 3
# Target of an item's aggregated score by grade. With a product t-norm a
# substitute's target is what its one contradicting entity learns to score,
# so it must sit near 0, not at 2/3: on held-out demo queries these targets
# gave nDCG@10 0.920, linear grade/3 targets 0.865 (pretraining alone 0.898).
ITEM_TARGETS: Mapping[int, float] = {3: 1.0, 2: 0.1, 1: 0.01, 0: 0.0}
# Targets of a (query, entity) score by outcome: the scale of entrel.logic (1 match, 0.5 neutral, 0 contradicts).
MATCH, NEUTRAL, CONTRADICT = 1.0, 0.5, 0.0
# Another type of the same head ("gaming chair" for "office chair"): a mild contradiction.
SUBSTITUTE = 0.25
# How often a synthetic query names only the head of a multi-word product type, and adds a title phrase.
_HEAD_ONLY = 0.25
_WITH_PHRASE = 0.3
_WORD = re.compile(r"[^\W_]+")
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


def item_example(query: str, entities: Sequence[Entity], target: float) -> Example:
    """One (query, item) case for training through the aggregate: the item's rendered entities and their
    types (for the type weights), grouped by query."""
    query = normalize(query)
    return Example(query, tuple(e.render() for e in entities), target, query, tuple(e.type.value for e in entities))


def item_examples(labels: Sequence[Label], entities_by_item: Mapping[str, Sequence[Entity]]) -> list[Example]:
    """One example per labelled (query, item) that has entities, with its grade's target."""
    return [
        item_example(label.query, entities_by_item[label.item_id], ITEM_TARGETS[label.grade])
        for label in labels
        if entities_by_item.get(label.item_id)
    ]


def _stem(word: str) -> str:
    """Crude plural folding, enough for "chairs" to state "chair"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def words(text: str) -> tuple[str, ...]:
    """The word stems of a normalised text, in order."""
    return tuple(_stem(w) for w in _WORD.findall(text))


def is_stated(entity: Entity, query_words: set[str]) -> bool:
    """Whether the query states the entity: every word of it appears in the query."""
    entity_words = words(entity.text)
    return bool(entity_words) and set(entity_words) <= query_words


def product_type_outcome(asked: str, other: str) -> float | None:
    """What product type `other` is worth to a query asking for product type `asked`.

    The last word is the head ("chair mat" is a mat, not a chair): another
    head contradicts (accessories and complements included); a more
    specific type of the same head matches ("office chair" for "chair");
    the same head with other modifiers is a substitute ("gaming chair" for
    "office chair"); a more general one is neutral ("chair" for "office
    chair"). None when either has no word.

    >>> [product_type_outcome("office chair", t) for t in ("chair mat", "chairs", "gaming chair", "ergonomic office chair")]
    [0.0, 0.5, 0.25, 1.0]
    """
    a, o = words(asked), words(other)
    if not a or not o:
        return None
    if a == o:
        return MATCH
    if a[-1] != o[-1]:
        return CONTRADICT
    if o[-len(a) :] == a:
        return MATCH
    if a[-len(o) :] == o:
        return NEUTRAL
    return SUBSTITUTE


def _usable(entities_per_item: Sequence[Sequence[Entity]]) -> list[Sequence[Entity]]:
    """Items with at least one entity a shopper's query may state."""
    return [es for es in entities_per_item if any(e.type in _STATED for e in es)]


def _shopper_query(entities: Sequence[Entity], rng: random.Random) -> tuple[str, dict[EntityType, str]]:
    """A query for an item written as shoppers write ("women acme red office chair"), and what it states.

    Some of the item's entities, each stated with its type's probability (at
    least one), in shoppers' word order; sometimes only the head noun of the
    product type; sometimes a title phrase among them.
    """
    own = {e.type: e for e in entities if e.type in _STATED}
    stated = {t: e.text for t, e in own.items() if rng.random() < _STATED[t]} or {
        t: e.text for t, e in [rng.choice(list(own.items()))]
    }
    product_type = stated.get(EntityType.PRODUCT_TYPE)
    if product_type and " " in product_type and rng.random() < _HEAD_ONLY:
        stated[EntityType.PRODUCT_TYPE] = product_type.rsplit(" ", 1)[1]
    parts = [stated[t] for t in _QUERY_ORDER if t in stated]
    phrases = [e for e in entities if e.type == EntityType.PHRASE]
    if phrases and rng.random() < _WITH_PHRASE:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(phrases).text)
    return normalize(" ".join(parts)), stated


def pseudo_queries(entities_per_item: Sequence[Sequence[Entity]], n_queries: int, seed: int = 13) -> list[str]:
    """Up to `n_queries` distinct shopper-style queries written from random catalog items (no labels needed):
    queries a teacher can score against the catalog, where real queries are few."""
    rng = random.Random(seed)
    usable = _usable(entities_per_item)
    queries: dict[str, None] = {}
    # Short catalogs repeat themselves: stop after a bounded number of draws.
    for _ in range(n_queries * 3 if usable else 0):
        query = _shopper_query(rng.choice(usable), rng)[0]
        if query:
            queries[query] = None
        if len(queries) == n_queries:
            break
    return list(queries)


def synthetic_entity_examples(
    entities_per_item: Sequence[Sequence[Entity]],
    n_queries: int,
    seed: int = 13,
    negatives_per_type: int = 3,
    too_close: Callable[[str, str], bool] | None = None,
) -> list[Example]:
    """Query-entity pairs with known outcome (match / neutral / contradict), generated from the catalog.

    For a random item, a query states some of its entities the way shoppers
    write ("women acme red office chair", sometimes only the head noun of
    the product type, sometimes a title phrase). Then: its entities that the
    query states match (1); its other entities are neutral (0.5); another
    value of a stated type contradicts (0; product types by
    :func:`product_type_outcome`, so "chair mat" contradicts "office chair");
    an entity of a type the query does not state, from another item, is
    neutral (0.5). Nothing here needs a label: it works on any catalog.
    `too_close(a, b)` names product types that may be synonyms ("frying pan",
    "chef's pan"): such pairs are left out rather than taught as contradictions.
    """
    rng = random.Random(seed)
    by_type: dict[EntityType, list[Entity]] = defaultdict(list)
    for entity in sorted({e for es in entities_per_item for e in es}):
        by_type[entity.type].append(entity)
    usable = _usable(entities_per_item)
    out: list[Example] = []
    for _ in range(n_queries if usable else 0):
        entities = rng.choice(usable)
        query, stated = _shopper_query(entities, rng)
        query_words = set(words(query))
        group = f"synthetic:{query}"
        pairs = [(e, MATCH if is_stated(e, query_words) else NEUTRAL) for e in entities]
        for t, text in stated.items():
            others = [o for o in by_type[t] if o.text != text]
            for other in rng.sample(others, min(negatives_per_type, len(others))):
                if t == EntityType.PRODUCT_TYPE:
                    close = too_close is not None and too_close(text, other.text)
                    outcome = None if close else product_type_outcome(text, other.text)
                else:  # "navy blue" vs "blue": too close to call, left out
                    outcome = None if set(words(other.text)) & set(words(text)) else CONTRADICT
                if outcome is not None:
                    pairs.append((other, outcome))
        for t in _STATED:
            if t not in stated and by_type[t]:
                other = rng.choice(by_type[t])
                if not set(words(other.text)) & query_words:
                    pairs.append((other, NEUTRAL))
        out.extend(Example(query, (e.render(),), target, group) for e, target in dict(pairs).items())
    return out


def label_entity_examples(labels: Sequence[Label], entities_by_item: Mapping[str, Sequence[Entity]]) -> list[Example]:
    """Query-entity pairs of real queries with known outcome, read off graded item labels.

    An exact item's product type matches (1: it is what the query asks for,
    however worded), its other entities match when the query states them
    and are neutral (0.5) otherwise. The product type of an irrelevant or
    complement item (ESCI's C: accessories) contradicts (0) unless an
    exact item shares it or the query names its head word; so does an
    irrelevant item's value of a type the query states (another color,
    brand or size) that no exact item has and the query does not name.
    Anything else teaches nothing certain and is left out.
    """
    by_query: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_query[normalize(label.query)].append(label)
    out: list[Example] = []
    for query, judged in by_query.items():
        query_words = set(words(query))
        exact = {e for lab in judged if lab.grade == MAX_GRADE for e in entities_by_item.get(lab.item_id, ())}
        stated_types = {e.type for e in exact if is_stated(e, query_words)}
        # An exact item is what the query asks for: its product type matches however it is worded
        # ("chef's pan" for "deep frying pan"); its other entities match when the query states them.
        outcome: dict[Entity, float] = {
            e: MATCH if e.type == EntityType.PRODUCT_TYPE or is_stated(e, query_words) else NEUTRAL for e in exact
        }
        for lab in judged:
            if lab.grade > 1:
                continue
            for entity in entities_by_item.get(lab.item_id, ()):
                entity_words = words(entity.text)
                if entity in outcome or not entity_words:
                    continue
                if entity.type == EntityType.PRODUCT_TYPE:
                    # "chair mat" for "red office chair": its head (mat) is not what the query asks for.
                    if entity_words[-1] not in query_words:
                        outcome[entity] = CONTRADICT
                elif lab.grade == 0 and entity.type in stated_types and not set(entity_words) & query_words:
                    outcome[entity] = CONTRADICT
        out.extend(Example(query, (e.render(),), target, query) for e, target in outcome.items())
    return out
