"""Choosing an item's entities: caps per type, no duplicates, one size of each kind, one audience, a cap per item.

An item gets only a handful of entities, since online each uncached one
costs a cross-encoder call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from entrel.catalog.entity import Entity, EntityType
from entrel.catalog.sizes import size_kind

__all__ = ["Chosen", "one_audience"]

T = EntityType
# Entities kept per type (phrases: the phrase cap, max_phrases + max_model_names).
_TYPE_CAPS = {T.PRODUCT_TYPE: 1, T.BRAND: 1, T.COLOR: 3, T.SIZE: 2, T.MATERIAL: 2, T.AUDIENCE: 1, T.STYLE: 2}
# Over settings.max_entities_per_item, the least telling types give way first.
_DROP_ORDER = (T.PHRASE, T.STYLE, T.MATERIAL, T.COLOR, T.SIZE, T.AUDIENCE, T.BRAND, T.PRODUCT_TYPE)
_CHILDREN = frozenset({"kids", "boys", "girls", "teen", "toddler", "baby"})


def one_audience(audiences: list[str]) -> str | None:
    """One audience for the title's mentions: men and women -> unisex, several children's -> kids."""
    distinct = list(dict.fromkeys(audiences))
    if len(distinct) <= 1:
        return distinct[0] if distinct else None
    if "unisex" in distinct or {"men", "women"} <= set(distinct):
        return "unisex"
    if set(distinct) <= _CHILDREN:
        return "kids"
    return distinct[0]


class Chosen:
    """The entity texts chosen so far, per type, in the order found; caps and de-duplication."""

    def __init__(self, phrase_cap: int) -> None:
        self._texts: dict[EntityType, list[str]] = {}
        self._caps = {**_TYPE_CAPS, T.PHRASE: phrase_cap}
        self._size_kinds: set[str] = set()

    def get(self, type_: EntityType) -> list[str]:
        return self._texts.get(type_, [])

    def types(self) -> frozenset[EntityType]:
        return frozenset(t for t, texts in self._texts.items() if texts)

    def texts(self) -> Iterator[str]:
        """Every text chosen so far, of any type."""
        return (text for texts in self._texts.values() for text in texts)

    def add(self, type_: EntityType, text: str | None, only_if_missing: bool = False) -> None:
        if not text:
            return
        texts = self._texts.setdefault(type_, [])
        if text not in texts and len(texts) < self._caps[type_] and not (only_if_missing and texts):
            texts.append(text)

    def extend(self, type_: EntityType, texts: Iterable[str], only_if_missing: bool = False) -> None:
        if only_if_missing and self.get(type_):
            return
        for text in texts:
            self.add(type_, text)

    def add_size(self, text: str) -> None:
        """At most one size of each kind (see sizes.size_kind)."""
        kind = size_kind(text)
        if kind not in self._size_kinds:
            self._size_kinds.add(kind)
            self.add(T.SIZE, text)

    def entities(self, cap: int) -> list[Entity]:
        """The chosen entities, sorted; over `cap`, the least telling types give way first."""
        texts = {t: list(v) for t, v in self._texts.items()}
        total = sum(len(v) for v in texts.values())
        for type_ in _DROP_ORDER:
            while total > cap and texts.get(type_):
                texts[type_].pop()
                total -= 1
        order = list(EntityType)
        entities = {Entity.of(t, text) for t, values in texts.items() for text in values}
        return sorted(entities, key=lambda e: (order.index(e.type), e.text))
