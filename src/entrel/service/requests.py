"""What a scoring call asks: queries and items, checked before any scoring.

Free of gRPC types: the gRPC layer, the evaluation and the benchmark hand
the engine these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from entrel.catalog import CatalogItem
from entrel.errors import EntrelError

__all__ = ["Group", "InvalidRequest", "ItemRefs", "ItemRequest", "ValidQuery"]


class InvalidRequest(EntrelError, ValueError):
    """The request itself is wrong (empty or over-long query, too many items)."""


@dataclass(frozen=True)
class ValidQuery:
    """A query that passed :meth:`~entrel.service.engine.RelevanceEngine.validate` for its request, so scoring does not check it again."""

    normalized: str


@dataclass(frozen=True)
class ItemRequest:
    """An item by catalog id, or sent inline with its fields."""

    item_id: str
    inline: CatalogItem | None = None


@dataclass(frozen=True)
class ItemRefs:
    """A group's items as columns: ids in request order, and the inline items by position.

    What the gRPC layer hands over, so a request of many items builds no
    per-item request objects; :meth:`of` takes a list of ItemRequest.
    """

    ids: Sequence[str]
    inline: Mapping[int, CatalogItem] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, items: Sequence[ItemRequest] | ItemRefs) -> ItemRefs:
        if isinstance(items, ItemRefs):
            return items
        return cls([r.item_id for r in items], {i: r.inline for i, r in enumerate(items) if r.inline is not None})


@dataclass(frozen=True)
class Group:
    """One query and its items within a batch: answered as a call of its own would be."""

    query: str | ValidQuery
    items: Sequence[ItemRequest] | ItemRefs
    explain: bool = False
