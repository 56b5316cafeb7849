"""Canonical entity texts: what a column value, a category path or a lexicon variant stands for.

Entity texts are cache keys, so each value becomes one short, reusable text
("Visit the Acme Store" -> "acme", "Office Chairs" -> "office chair",
"Grey" -> "gray"), or None when it is junk.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping

from entrel.catalog import lexicon
from entrel.catalog.entity import EntityType
from entrel.text import normalize

__all__ = [
    "ADJECTIVE_ENDINGS",
    "GENERIC_STEMS",
    "LEXICON_STEMS",
    "LEXICON_TEXTS",
    "MAX_WORDS",
    "TABLES",
    "attribute_types",
    "canonical_brand",
    "canonical_entity",
    "canonical_of",
    "canonical_type",
    "category_levels",
    "short",
    "type_keys",
]

T = EntityType
# Longest product type, free-text value or phrase, in words.
MAX_WORDS = 3
_MAX_BRAND_WORDS = 4
_MAX_BRAND_CHARS = 40
# Category levels searched for a product type: the leaf and two parents.
_CATEGORY_LEVELS = 3
_EDGE_PUNCTUATION = ".,;:!?()[]{}\"'&+/*#"
_ALTERNATIVES = re.compile(r"\s*(?:,|&|/|\band\b)\s*")
ADJECTIVE_ENDINGS = ("able", "ible", "ful", "less", "ous", "al", "ic")
_STORE_BRAND = re.compile(r"^visit the (.+) store$")
GENERIC_STEMS = frozenset(lexicon.stem(w) for w in lexicon.GENERIC_WORDS)
# Leading words dropped from a category's product type ("Casual Button-Down Shirts").
_LEADING_MODIFIERS = lexicon.GENERIC_WORDS | lexicon.AUDIENCES.keys() | lexicon.STYLES.keys()
# Heads that make even a modified category name vague ("Kitchen Accessories").
_VAGUE_HEADS = frozenset(
    lexicon.stem(w) for w in ("accessories", "parts", "supplies", "products", "essentials", "items", "other", "more")
)

TABLES: dict[EntityType, Mapping[str, str]] = {
    T.COLOR: lexicon.COLORS,
    T.MATERIAL: lexicon.MATERIALS,
    T.AUDIENCE: lexicon.AUDIENCES,
    T.STYLE: lexicon.STYLES,
}
# Lexicon words are typed entities, never product types or phrase words.
LEXICON_TEXTS = frozenset(text for table in TABLES.values() for text in (*table.keys(), *table.values()))
LEXICON_STEMS = frozenset(
    lexicon.stem(word) for table in (*TABLES.values(), lexicon.APPAREL_SIZES) for variant in table for word in variant.split()
)


def canonical_brand(raw: str) -> str | None:
    """The brand column's value as an entity text, or None for junk ("Generic", "N/A", a sentence)."""
    text = normalize(raw)
    if store := _STORE_BRAND.match(text):
        text = store.group(1)
    if (
        text in lexicon.JUNK_VALUES
        or not any(ch.isalpha() for ch in text)
        or len(text.split()) > _MAX_BRAND_WORDS
        or len(text) > _MAX_BRAND_CHARS
    ):
        return None
    return text


# Two letters in a row: what every product type name has.
_WORD = re.compile(r"[^\W\d_]{2}")


def canonical_type(raw: str) -> str | None:
    """A product type name, short and singular: "Office Chairs" -> "office chair"."""
    words = normalize(raw).split()[-MAX_WORDS:]
    name = " ".join(words)
    # A type names a thing in words ("t-shirt" too): "1" or "16" in a type column is junk.
    if not _WORD.search(name) or name in lexicon.JUNK_VALUES:
        return None
    return " ".join([*words[:-1], lexicon.singularize(words[-1])])


def canonical_of(type_: EntityType, variant: str) -> str:
    """The canonical text of a lexicon variant; brands and vocabulary types are canonical already."""
    table = TABLES.get(type_)
    return table[variant] if table is not None else variant


def canonical_entity(type_: EntityType, raw: str) -> str | None:
    """The entity text the extractor would give one value of `type_` ("Grey" -> "gray", "Office Chairs" ->
    "office chair"), or None for junk; for texts typed by hand (overrides) that must match extracted entities."""
    if type_ is T.BRAND:
        return canonical_brand(raw)
    if type_ is T.PRODUCT_TYPE:
        return canonical_type(raw)
    text = normalize(raw)
    table = TABLES.get(type_)
    if table is not None and text in table:
        return table[text]
    return text or None


def _segment_types(segment: str, leaf: bool) -> list[str]:
    """The product types one category segment names, e.g. "Tops, Tees & Blouses" -> top, tee, blouse.

    Taxonomies name product types in the plural ("Slippers") or as mass
    nouns ("Toothpaste"); other segments name audiences, sports or features
    ("Women", "Basketball", "Programmable") and give none. A parent level
    counts only when plural, so "Kitchen & Dining" is no product type.
    """
    found: list[tuple[str, bool]] = []
    for part in _ALTERNATIVES.split(normalize(segment)):
        words = part.split()
        while len(words) > 1 and words[0] in _LEADING_MODIFIERS:  # "Casual Button-Down Shirts"
            words = words[1:]
        if not words:
            continue
        head = lexicon.stem(words[-1])
        # "Dress" (shoes) and "Basketball" are no product types; "Dresses" and "Basketballs" are.
        if words[-1] in lexicon.NON_TYPE_WORDS or head in _VAGUE_HEADS or (len(words) == 1 and head in GENERIC_STEMS):
            continue
        plural = head != words[-1]
        if plural or (leaf and (len(words) > 1 or not words[-1].endswith(ADJECTIVE_ENDINGS))):
            text = canonical_type(" ".join(words))
            if text:
                found.append((text, plural))
    if any(plural for _, plural in found):  # "Bathtub & Shower Trim Systems": the plural is the type
        found = [item for item in found if item[1]]
    return [text for text, _ in found]


@functools.lru_cache(maxsize=4096)
def category_levels(category: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Product types of the category path, deepest level first (the root department is skipped)."""
    path = (category[1:] if len(category) > 1 else category)[-_CATEGORY_LEVELS:]
    return tuple(tuple(_segment_types(segment, leaf=depth == 0)) for depth, segment in enumerate(reversed(path)))


def attribute_types(attributes: Mapping[str, str]) -> Iterator[tuple[EntityType, str]]:
    """(entity type, value) for each attribute whose key names one."""
    for key, value in attributes.items():
        type_ = lexicon.ATTRIBUTE_KEYS.get(normalize(str(key)))
        if type_ is not None and normalize(str(value)) not in lexicon.JUNK_VALUES:
            yield type_, str(value)


def type_keys(text: str) -> tuple[str, ...]:
    """Matching keys of a multiword name: stems of its words, hyphens as spaces."""
    words = (w.strip(_EDGE_PUNCTUATION) for w in text.replace("-", " ").split())
    return tuple(lexicon.stem(w) for w in words if w)


def short(text: str, max_words: int = MAX_WORDS) -> str | None:
    """`text` normalised if it is a short, meaningful value, else None."""
    text = normalize(text)
    if text in lexicon.JUNK_VALUES or len(text.split()) > max_words or not any(ch.isalpha() for ch in text):
        return None
    return text
