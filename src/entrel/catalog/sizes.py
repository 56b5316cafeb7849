"""Sizes and quantities: spaCy Matcher patterns and their canonical texts.

Numbers with units, pack counts, dimensions and size words become one text
per size ("16.9 fl. oz" -> "16.9 fl oz", "Pack of 24" -> "24 pack",
"34W X 32L" -> "34w x 32l", "XL" -> "x-large"), each of one kind: a
measure, a count or a fit.
"""

from __future__ import annotations

import re
from typing import Any

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from entrel.catalog import lexicon
from entrel.catalog.entity import EntityType
from entrel.catalog.spans import Match, Title

__all__ = ["SizeMatcher", "size_kind"]

_NUMBER = r"\d+/\d+|\d+(?:\.\d+)?|\.\d+"
_NUMBER_RE = re.compile(rf"^(?:{_NUMBER})$")
_DIMENSION_RE = re.compile(rf"^(?:{_NUMBER})x(?:{_NUMBER})$")
_COUNT_UNITS = frozenset({"pack", "count", "piece", "pair"})
_OF_UNITS = {"pack": "pack", "case": "pack", "set": "piece", "box": "count", "bag": "count", "pair": "pair"}
_SHOE_WIDTHS_US = ["m", "w", "b", "d", "n", "mens", "womens"]
_SHOE_WIDTHS = ["medium", "wide", "narrow", "x-wide"]
_TIMES = ["x", "by", "*", "×"]


class SizeMatcher:
    """Finds sizes and quantities in a doc, as SIZE matches with canonical texts."""

    def __init__(self, nlp: Language) -> None:
        """Few patterns with cheap predicates: the Matcher costs per pattern and token."""
        self._nlp = nlp
        matcher = Matcher(nlp.vocab)
        number = {"LIKE_NUM": True}
        fraction = {"TEXT": {"REGEX": r"^\d+/\d+$"}}
        hyphen = {"ORTH": "-", "OP": "?"}
        times = {"LOWER": {"IN": _TIMES}}
        unit = {"LOWER": {"IN": sorted(v for v in lexicon.SIZE_UNITS if " " not in v)}}
        unit_opt = {**unit, "OP": "?"}
        units: list[list[dict[str, Any]]] = [[unit]]
        for variant in sorted(v for v in lexicon.SIZE_UNITS if " " in v):  # "fl oz", "fl. oz"
            first, *rest = variant.split()
            units.append([{"LOWER": first}, *(t for w in rest for t in ({"ORTH": ".", "OP": "?"}, {"LOWER": w}))])
        matcher.add(
            "measure",
            [[number, hyphen, *u] for u in units] + [[number, hyphen, fraction, hyphen, *u] for u in units],
        )
        matcher.add(
            "dimensions",
            [[number, unit_opt, times, number, *u] for u in units]
            + [[number, unit_opt, times, number, unit_opt, times, number, *u] for u in units]
            + [[{"LOWER": {"REGEX": _DIMENSION_RE.pattern}}, *u] for u in units],
        )
        fused_units = "|".join(sorted((v for v in lexicon.SIZE_UNITS if v.isalnum()), key=len, reverse=True))
        self._fused = re.compile(rf"^({_NUMBER})-?({fused_units})$")
        matcher.add("fused", [[{"LOWER": {"REGEX": self._fused.pattern}}]])
        matcher.add("of", [[{"LOWER": {"IN": sorted(_OF_UNITS)}}, {"LOWER": "of"}, number]])
        matcher.add("size", [[{"LOWER": "size"}, number]])
        # Trousers: "34W X 32L" is waist x length, not 34 watts.
        matcher.add("waist", [[{"LOWER": {"REGEX": r"^\d+w$"}}, times, {"LOWER": {"REGEX": r"^\d+l$"}}]])
        matcher.add(
            "shoe",
            [
                [number, {"LOWER": {"IN": _SHOE_WIDTHS_US}}, {"LOWER": "us"}],
                [number, {"LOWER": {"IN": _SHOE_WIDTHS}}],
            ],
        )
        for kind, table in (("apparel", lexicon.APPAREL_SIZES), ("bed", lexicon.BED_SIZES)):
            for variant, canonical in sorted(table.items()):
                tokens = [{"LOWER": tok.lower_} for tok in nlp.make_doc(variant)]
                matcher.add(f"{kind}\t{canonical}", [tokens])
        self._matcher = matcher

    def __call__(self, doc: Doc, title: Title | None) -> list[Match]:
        """Sizes and quantities in `doc`; with a title, size words count only where
        a title names sizes ("..., Small", "Size M", "Queen Mattress")."""
        out = []
        for match_id, start, end in self._matcher(doc):
            kind, _, canonical = self._nlp.vocab.strings[match_id].partition("\t")
            span = doc[start:end]
            numbers = [t.text.replace(",", "") for t in span if t.like_num]
            if not all(_NUMBER_RE.match(n) for n in numbers):  # "ten", "one"
                continue
            text: str | None = None
            if kind == "fused":
                number, variant = self._fused.match(span.text.lower()).groups()  # type: ignore[union-attr]
                text = _quantity(number, lexicon.SIZE_UNITS[variant])
            elif kind in ("measure", "dimensions"):
                unit = lexicon.SIZE_UNITS[_unit_words(span)]
                two_in_one = span[-1].lower_ == "in" and end < len(doc) and doc[end].like_num
                if kind == "dimensions":
                    text = " x ".join(_number(n) for n in re.findall(_NUMBER, span.text)) + f" {unit}"
                elif not two_in_one:
                    text = _quantity(" ".join(_number(n) for n in numbers), unit)
            elif kind == "of":
                text = _quantity(numbers[-1], _OF_UNITS[span[0].lower_])
            elif kind in ("size", "shoe"):
                text = f"size {_number(numbers[0])}"
            elif kind == "waist":
                text = f"{span[0].lower_} x {span[-1].lower_}"
            elif title is None or _names_size(title, kind, start, end):
                text = canonical
            if text:
                out.append(Match(EntityType.SIZE, text, start, end))
        return out


def size_kind(text: str) -> str:
    """The kind of a size text: a measure ("32 oz"), a count ("2 pack") or a fit ("size 8", "x-large", "queen")."""
    if not text[0].isdigit():
        return "fit"
    return "count" if text.rsplit(" ", 1)[-1] in _COUNT_UNITS else "measure"


def _names_size(title: Title, kind: str, start: int, end: int) -> bool:
    doc = title.doc
    if start > 0 and doc[start - 1].lower_ == "size":
        return True
    if title.variant[start] and (end == len(doc) or doc[end].is_punct or doc[end].lower_ == "size"):
        return True  # ", Small," "(Twin/Full)"; not ", Full Script"
    if kind == "bed":
        return end < len(doc) and doc[end].lower_ in lexicon.BED_WORDS
    # A size word ending the title ("... Mini Dress X-Large"), not a bare letter.
    return end - 1 == title.last_word and len(doc[start:end].text) > 2


def _unit_words(span: Span) -> str:
    """The unit a size span ends with, as written: "fl oz" from "16.9 fl. oz"."""
    words: list[str] = []
    for tok in reversed(span):
        if tok.like_num or _DIMENSION_RE.match(tok.lower_):
            break
        if tok.text not in ".-":
            words.append(tok.lower_)
    return " ".join(reversed(words))


def _number(text: str) -> str:
    """ "0.50" -> "0.5", ".5" -> "0.5", "12" -> "12"."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
        text = "0" + text if text.startswith(".") else text
    return text or "0"


def _quantity(number: str, unit: str) -> str | None:
    """ "<number> <unit>", or None for a count of one ("1-Pack" says nothing)."""
    number = _number(number)
    if unit in _COUNT_UNITS and number in ("0", "1"):
        return None
    return f"{number} {unit}"
