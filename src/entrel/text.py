"""Text normalisation: the single source of cache keys.

Queries and entity texts go through :func:`normalize` offline (nightly job,
training) and online (server) alike, so a (query, entity) key computed at
night is the key looked up at serving time.

    >>> normalize("  Red   LEATHER Office-Chair\u200b ")
    'red leather office-chair'
    >>> normalize("Café “Crème”")
    'café "crème"'
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["cased_like", "is_blank", "normalize"]

# Characters that render as nothing or as a line break: control and format
# characters (zero-width spaces, bidi marks, BOM) are dropped; separators
# become a plain space.
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_SPACE_CATEGORIES = {"Zs", "Zl", "Zp"}
# Typographic variants folded to their ASCII form so "women’s" == "women's".
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)
_WHITESPACE = re.compile(r"\s+")


def _clean_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if ch in "\t\n\r" or category in _SPACE_CATEGORIES:
        return " "
    if category in _DROP_CATEGORIES:
        return ""
    return ch


def normalize(text: str) -> str:
    """Canonical form of a query or entity text: NFKC, case-folded, cleaned, single-spaced.

    Keeps accents and punctuation that carry meaning ("1/2", "w/", "3.5mm");
    drops invisible characters; never raises on odd unicode (lone surrogates
    and private-use characters are removed).
    """
    if text.isascii() and text.isprintable():
        # Most queries and titles: NFKC, the folds and NFC leave printable ASCII as it is and it holds
        # nothing to drop, so only case and spaces change (the same result, about 7x sooner).
        return _WHITESPACE.sub(" ", text.lower()).strip()
    return _normalize_unicode(text)


def _normalize_unicode(text: str) -> str:
    """:func:`normalize` for any text."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(_clean_char(ch) for ch in text)
    text = text.translate(_FOLD).casefold()
    # casefold can reintroduce decomposed forms (e.g. "ß" -> "ss" is fine,
    # but some letters expand); renormalise for a stable key.
    text = unicodedata.normalize("NFC", text)
    return _WHITESPACE.sub(" ", text).strip()


def cased_like(text: str, normalized: str) -> str | None:
    """`text` spaced as `normalized` (its :func:`normalize`) but with its own letter case, when the two
    line up character for character (most titles); None when normalising changed more than case and spaces,
    or lower-casing changed a length ("İ" becomes two characters)."""
    cased = _WHITESPACE.sub(" ", text).strip()
    return cased if len(cased) == len(normalized) and cased.lower() == normalized else None


def is_blank(text: str) -> bool:
    """True when nothing is left of `text` after normalisation."""
    return not normalize(text)
