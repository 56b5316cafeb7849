"""Size limits on a request's inline items, checked before any parsing.

Live extraction costs time and memory in proportion to the text it reads,
so every field has a cap and so has the request as a whole: one request can
never make extraction slow or large for everyone else. A title also counts
after normalisation, because NFKC expands some characters 18-fold.
"""

from __future__ import annotations

from collections.abc import Iterable

from entrel.catalog import CatalogItem
from entrel.config import ServerSettings
from entrel.text import normalize

__all__ = ["inline_problem"]


def _too_long(what: str, text: str, limit: int, setting: str) -> str | None:
    if len(text) > limit:
        return f"{what} is {len(text)} characters; the limit is server.{setting}={limit}"
    return None


def _item_problem(where: str, item: CatalogItem, limits: ServerSettings) -> str | None:
    if len(item.attributes) > limits.max_inline_attributes:
        return (
            f"{where} has {len(item.attributes)} attributes; "
            f"the limit is server.max_inline_attributes={limits.max_inline_attributes}"
        )
    if len(item.category) > limits.max_inline_category_levels:
        return (
            f"{where} has {len(item.category)} category levels; "
            f"the limit is server.max_inline_category_levels={limits.max_inline_category_levels}"
        )
    field_limit = limits.max_inline_field_chars
    fields = [("item_id", item.item_id), ("brand", item.brand), ("color", item.color)]
    fields += [(f"category_path[{k}]", level) for k, level in enumerate(item.category)]
    fields += [(f"attribute key {key[:20]!r}", key) for key in item.attributes]
    fields += [(f"attribute {key[:20]!r}", value) for key, value in item.attributes.items()]
    for name, text in fields:
        if problem := _too_long(f"{where}.{name}", text, field_limit, "max_inline_field_chars"):
            return problem
    title_limit = limits.max_inline_title_chars
    return (
        _too_long(f"{where}.description", item.description, limits.max_inline_description_chars, "max_inline_description_chars")
        or _too_long(f"{where}.title", item.title, title_limit, "max_inline_title_chars")
        or _too_long(f"{where}.title after normalisation", normalize(item.title), title_limit, "max_inline_title_chars")
    )


def _chars(item: CatalogItem) -> int:
    """Characters the extractor reads (the id is not read, and has its own cap)."""
    texts = [item.title, item.description, item.brand, item.color, *item.category]
    return sum(map(len, texts)) + sum(len(k) + len(v) for k, v in item.attributes.items())


def inline_problem(items: Iterable[tuple[int, CatalogItem]], limits: ServerSettings) -> str | None:
    """What is wrong with the inline `(index, item)`s of one request, or None when all fit."""
    count = total = 0
    for index, item in items:
        count += 1
        if count > limits.max_inline_items:
            limit = limits.max_inline_items
            return f"more than {limit} inline items; the limit is server.max_inline_items={limit}"
        if problem := _item_problem(f"items[{index}].inline", item, limits):
            return problem
        total += _chars(item)
        if total > limits.max_inline_chars:
            return (
                f"inline items total more than {limits.max_inline_chars} characters; "
                f"the limit is server.max_inline_chars={limits.max_inline_chars}"
            )
    return None
