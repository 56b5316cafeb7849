"""The typed entity a product is decomposed into."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from entrel.text import normalize

__all__ = ["Entity", "EntityType"]


class EntityType(StrEnum):
    """What an entity says about a product. Order is the display order."""

    PRODUCT_TYPE = "product_type"
    BRAND = "brand"
    COLOR = "color"
    MATERIAL = "material"
    SIZE = "size"
    AUDIENCE = "audience"
    STYLE = "style"
    # Fallback: another salient phrase of the title or description.
    PHRASE = "phrase"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True, order=True)
class Entity:
    """One (type, text) fact about a product; `text` is always normalised.

    >>> Entity.of("color", " Navy  Blue ").render()
    'color: navy blue'
    """

    type: EntityType
    text: str

    @classmethod
    def of(cls, type_: str | EntityType, text: str) -> Entity:
        return cls(EntityType(type_), normalize(text))

    def render(self) -> str:
        """The text the cross-encoder sees beside the query."""
        return f"{self.type.label}: {self.text}"
