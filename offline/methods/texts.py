"""How a product reads to a text model: its title, then the fields a title often lacks."""

from __future__ import annotations

from entrel.catalog import CatalogItem

__all__ = ["item_text"]


def item_text(item: CatalogItem) -> str:
    """``title; brand: B; color: C``, leaving out empty fields."""
    fields = [f"{name}: {value}" for name, value in (("brand", item.brand), ("color", item.color)) if value]
    return "; ".join([item.title, *fields])
