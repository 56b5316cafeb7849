"""The vocabulary: brands and product types learned from a catalog's columns, and its JSON form."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from entrel.catalog import lexicon
from entrel.catalog.canonical import GENERIC_STEMS, attribute_types, canonical_brand, canonical_type, category_levels
from entrel.catalog.entity import EntityType
from entrel.catalog.reader import CatalogItem

__all__ = ["Vocabulary"]

log = logging.getLogger(__name__)

T = EntityType
_VOCABULARY_VERSION = 1


@dataclass(frozen=True)
class Vocabulary:
    """Brands and product types learned from a catalog's structured columns.

    Saved in each cache snapshot so the server extracts exactly like the
    nightly job that filled the cache. Title matching uses it for items
    whose columns are empty.
    """

    brands: frozenset[str] = frozenset()
    product_types: frozenset[str] = frozenset()

    @classmethod
    def learn(cls, items: Iterable[CatalogItem]) -> Vocabulary:
        """Brands from brand columns and attributes; product types from category paths
        (with their shorter tails: "office chair" adds "chair") and type attributes."""
        brands: set[str] = set()
        types: set[str] = set()
        count = 0
        for item in items:
            count += 1
            attributes = list(attribute_types(item.attributes))
            for raw in (item.brand, *(value for type_, value in attributes if type_ is T.BRAND)):
                if brand := canonical_brand(raw):
                    brands.add(brand)
            names = [name for level in category_levels(tuple(item.category)) for name in level]
            names += [value for type_, value in attributes if type_ is T.PRODUCT_TYPE]
            for name in names:
                canonical = canonical_type(name)
                if not canonical:
                    continue
                words = canonical.split()
                for i in range(len(words)):
                    tail = " ".join(words[i:])
                    if i == 0 or (len(tail) > 2 and lexicon.stem(tail) not in GENERIC_STEMS):
                        types.add(tail)
        log.info("vocabulary learned", extra={"items": count, "brands": len(brands), "product_types": len(types)})
        return cls(frozenset(brands), frozenset(types))

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": _VOCABULARY_VERSION,
                "brands": sorted(self.brands),
                "product_types": sorted(self.product_types),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """Raises ValueError for anything but a vocabulary written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"vocabulary is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != _VOCABULARY_VERSION:
            raise ValueError(f"vocabulary has no version {_VOCABULARY_VERSION} header")
        lists: list[Any] = [data.get("brands"), data.get("product_types")]
        if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in lists):
            raise ValueError("vocabulary needs string lists 'brands' and 'product_types'")
        return cls(frozenset(lists[0]), frozenset(lists[1]))
