"""What a query excludes ("water bottle without straw") and whether an item has it.

Shoppers state negative requirements, and neither a bi-encoder nor a
(query, entity) cross-encoder reads them: "without straw" embeds close to
"with straw". In the soft logic an exclusion is one more compatibility
constraint, tested against the item's title (or, with ``exclusion.reads =
"entities"``, its entity texts: :func:`entity_text`): an item whose text
names the excluded thing (and does not itself say it is without it: "no
straw", "straw-free") has its score multiplied by ``1 - exclusion.penalty``,
and the explanation names the term.

Only "without" and "w/o" start an exclusion: "no" and "free" are too often
part of a product's name ("no-show socks", "sugar free gum"). The excluded
phrase runs to the end of the query or to the next "with", "for", "and",
"in" or "on" ("lights without wiring with switch" excludes "wiring"). Works
on normalised text (:func:`entrel.text.normalize`), the same for every
path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

__all__ = ["entity_text", "excluded_terms", "violated_exclusion"]

_EXCLUSION = re.compile(r"\b(?:without|w/o)\s+(.+?)(?=\s+(?:with|for|and|in|on)\b|$)")
_WORD = re.compile(r"[^\W_]+")
_IGNORED = frozenset({"the", "a", "an", "any", "of"})
# The item itself says it lacks the term: "no straw", "without lid", "bpa-free".
# The term as a whole word, singular or plural ("straw", "straws"; not "strawberry").
_WHOLE = r"\b{stem}(?:s|es|y|ie|ies)?\b"
_ITEM_NEGATION = rf"\b(?:without|no|w/o|free\s+of|non)[\s-]+(?:[^\W_]+\s+){{{{0,2}}}}{_WHOLE}|{_WHOLE}[\s-]free\b"


def _stem(word: str) -> str:
    """A prefix that matches the word's plural and singular alike: "straw" for straw(s), "accessor" for
    accessory/accessories, "batter" for battery/batteries; "brass" and "mattress" stay whole."""
    if len(word) <= 3 or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3]
    return word[:-1] if word.endswith(("s", "y")) else word


@functools.lru_cache(maxsize=4096)
def excluded_terms(query: str) -> tuple[str, ...]:
    """Stems of the words the (normalised) query excludes; empty for most queries."""
    terms: list[str] = []
    for match in _EXCLUSION.finditer(query):
        terms += [_stem(w) for w in _WORD.findall(match.group(1)) if len(w) > 1 and w not in _IGNORED]
    return tuple(dict.fromkeys(terms))


@functools.lru_cache(maxsize=4096)
def _patterns(stem: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    escaped = re.escape(stem)
    return re.compile(_WHOLE.format(stem=escaped)), re.compile(_ITEM_NEGATION.format(stem=escaped))


def violated_exclusion(terms: tuple[str, ...], title: str) -> str:
    """The first excluded term the item's title names without negating it; "" when none."""
    text = title.lower()
    for stem in terms:
        names, negates = _patterns(stem)
        if names.search(text) and not negates.search(text):
            return stem
    return ""


def entity_text(texts: Iterable[str]) -> str:
    """An item's entity texts as the one text exclusions are read in (``exclusion.reads = "entities"``),
    apart, so no term spans two entities."""
    return " ; ".join(texts)
