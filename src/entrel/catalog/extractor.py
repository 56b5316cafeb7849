"""Decomposing a catalog item into a few short, canonical, typed entities.

Entity texts are cache keys shared by many products ("navy blue", "leather",
"office chair"): every rule prefers a canonical, reusable text over a
faithful but unique one, and an item gets only a handful of entities, since
online each uncached one costs a cross-encoder call.

Structured columns win. spaCy then reads the title (lowercased, as Title
Case confuses the tagger; tagger only: titles are not sentences, so the
parser's noun chunks are unreliable) for the types the columns lack, and the
start of the description for a material or color it states outright.
Titles are cut into segments at ",", "(", " - ", "|": a title's first
segment names the product, a short later one names a variant ("..., Black,
7 M US"), and matches never cross a cut.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import spacy
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span, Token
from tqdm import tqdm

from entrel.catalog import lexicon
from entrel.catalog.canonical import (
    ADJECTIVE_ENDINGS,
    GENERIC_STEMS,
    LEXICON_STEMS,
    LEXICON_TEXTS,
    MAX_WORDS,
    TABLES,
    attribute_types,
    canonical_brand,
    canonical_of,
    canonical_type,
    category_levels,
    short,
    type_keys,
)
from entrel.catalog.entity import Entity, EntityType
from entrel.catalog.reader import CatalogItem
from entrel.catalog.vocabulary import Vocabulary
from entrel.config import ExtractionSettings
from entrel.errors import EntrelError
from entrel.text import normalize

__all__ = ["EntityExtractor", "ExtractionError", "Vocabulary"]

T = EntityType
# Entities kept per type (phrases: settings.max_phrases).
_TYPE_CAPS = {T.PRODUCT_TYPE: 1, T.BRAND: 1, T.COLOR: 3, T.SIZE: 2, T.MATERIAL: 2, T.AUDIENCE: 1, T.STYLE: 2}
# Over settings.max_entities_per_item, the least telling types give way first.
_DROP_ORDER = (T.PHRASE, T.STYLE, T.MATERIAL, T.COLOR, T.SIZE, T.AUDIENCE, T.BRAND, T.PRODUCT_TYPE)
# Longest phrase: two words share across items far better than three.
_PHRASE_WORDS = 2
# A vocabulary brand found in a title counts only near its start (a
# one-word brand only as its first word: "apple" mid-title is fruit) or
# right after "by" ("... Coffee Mugs by Kiln & Co").
_TITLE_BRAND_WINDOW = 5
_BATCH_SIZE = 256
_STATEMENT_CUES = frozenset(
    {"material", "materials", "made", "crafted", "constructed", "built", "color", "colour", "finish", "finished", "shown"}
)
_CUE_WINDOW = 3
_COLOR_FILLERS = frozenset({"finish", "finished", "color", "colour", "colored", "tone", "shade"})
_NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
_HEAD_TAGS = _NOUN_TAGS | {"JJ", "VBG", "VBN", "FW"}
_CHILDREN = frozenset({"kids", "boys", "girls", "teen", "toddler", "baby"})

_SEPARATORS = frozenset({",", ";", "|", "(", ")", "[", "]", "{", "}", ":", "•", "·", "!"})
# Separators only when spaced: "blue - red" cuts, "t-shirt" and "black/red" do not.
_SPACED_SEPARATORS = frozenset({"-", "/", "+", "&"})
_NUMBER = r"\d+/\d+|\d+(?:\.\d+)?|\.\d+"
_NUMBER_RE = re.compile(rf"^(?:{_NUMBER})$")
_DIMENSION_RE = re.compile(rf"^(?:{_NUMBER})x(?:{_NUMBER})$")
_ADJECTIVE_SUFFIXES = (*ADJECTIVE_ENDINGS, "y", "ed", "ive", "ing", "ish", "proof", "free", "est", "er")
_COUNT_UNITS = frozenset({"pack", "count", "piece", "pair"})
_OF_UNITS = {"pack": "pack", "case": "pack", "set": "piece", "box": "count", "bag": "count", "pair": "pair"}
_SHOE_WIDTHS_US = ["m", "w", "b", "d", "n", "mens", "womens"]
_SHOE_WIDTHS = ["medium", "wide", "narrow", "x-wide"]
_TIMES = ["x", "by", "*", "×"]


@dataclass(frozen=True)
class _Match:
    """A typed span of a title (token offsets) with the canonical text it stands for."""

    type: EntityType
    text: str
    start: int
    end: int
    ambiguous: bool = False

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


# -- the title ----------------------------------------------------------------


class _Title:
    """A tagged title and what the rules read off it: segments, the main phrase, word keys."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        n = len(doc)
        self.segment = [0] * n
        self.separator = [False] * n
        current = 0
        for i, tok in enumerate(doc):
            spaced = tok.whitespace_ and (i == 0 or doc[i - 1].whitespace_)
            if tok.text in _SEPARATORS or (tok.text in _SPACED_SEPARATORS and spaced):
                self.separator[i] = True
                current += 1
            self.segment[i] = current
        words_per_segment: dict[int, int] = {}
        for i, tok in enumerate(doc):
            if not self.separator[i] and not tok.is_punct:
                words_per_segment[self.segment[i]] = words_per_segment.get(self.segment[i], 0) + 1
        first = min(words_per_segment, default=0)
        # Tokens in a short segment after the first name a variant: ", Black, 7 M US".
        self.variant = [self.segment[i] != first and words_per_segment.get(self.segment[i], 0) <= 3 for i in range(n)]
        self.last_word = max((i for i in range(n) if not doc[i].is_punct), default=-1)
        self.main_end = next((i for i, tok in enumerate(doc) if i > 0 and tok.lower_ in lexicon.MAIN_PHRASE_STOPS), n)
        # Word tokens (no punctuation, no hyphens) and their keys, for type search.
        self.words = [i for i, tok in enumerate(doc) if not tok.is_punct]
        self.keys = [doc[i].norm_ for i in self.words]

    def names_variant(self, i: int, matched: set[int]) -> bool:
        """Whether token i is in a variant segment whose every word is in `matched`."""
        segment = self.segment[i]
        return self.variant[i] and all(j in matched for j in self.words if self.segment[j] == segment)

    def find_compound(self, key: str, skip: range) -> tuple[int, int] | None:
        """The first compound ending in `key` ("sweatpants" for "pants", not "iphone" for "phone").

        Returns an empty span at the word: it confirms a type without covering the word.
        """
        if len(key) >= 4:
            for j, word in enumerate(self.keys):
                if word.endswith(key) and len(word) >= len(key) + 3 and self.words[j] not in skip:
                    return self.words[j], self.words[j]
        return None

    def find(self, keys: tuple[str, ...], skip: range) -> tuple[int, int] | None:
        """Token span of the first occurrence of `keys` outside `skip`."""
        n = len(keys)
        for j in range(len(self.keys) - n + 1):
            if tuple(self.keys[j : j + n]) == keys:
                start, end = self.words[j], self.words[j + n - 1] + 1
                if start not in skip and end - 1 not in skip:
                    return start, end
        return None

    def runs(self) -> Iterator[list[int]]:
        """Maximal runs of content words within a segment (tokens joined by "-" stay together)."""
        run: list[int] = []
        for i, tok in enumerate(self.doc):
            joined = tok.text == "-" and not tok.whitespace_ and i > 0 and not self.doc[i - 1].whitespace_
            content = (
                not tok.is_punct
                and not tok.is_stop
                and not self.separator[i]
                and any(ch.isalpha() for ch in tok.text)
                and not any(ch.isdigit() for ch in tok.text)
            )
            if content and run and self.segment[run[-1]] == self.segment[i]:
                run.append(i)
            elif content:
                if run:
                    yield run
                run = [i]
            elif not joined and run:
                yield run
                run = []
        if run:
            yield run


def _set_keys(doc: Doc) -> Doc:
    """Store each token's matching key (see lexicon.stem) as its NORM, for the phrase matchers.

    Done after tagging: the tagger reads NORM.
    """
    for tok in doc:
        tok.norm_ = lexicon.stem(tok.lower_)
    return doc


class ExtractionError(EntrelError, RuntimeError):
    """The extraction pipeline cannot be set up (e.g. the spaCy model is missing)."""


def _load_pipeline(name: str) -> Language:
    try:
        # Only the tagger is used: not the parser (see the module docstring),
        # nor the attribute ruler (fine-grained tags suffice), nor NER, nor the
        # lemmatizer (singular forms come from lexicon.singularize).
        return spacy.load(name, exclude=["parser", "ner", "lemmatizer", "senter", "attribute_ruler"])
    except OSError as exc:
        raise ExtractionError(
            f"spaCy model {name!r} (extraction.spacy_model) is not installed or cannot be loaded: "
            f"install it into this environment (e.g. pip install {name.replace('_', '-')}) "
            f"or set extraction.spacy_model to an installed model"
        ) from exc


# -- the extractor ------------------------------------------------------------


class EntityExtractor:
    """Turns catalog items into typed entities; deterministic for a given vocabulary and settings."""

    def __init__(self, settings: ExtractionSettings, vocabulary: Vocabulary) -> None:
        self.settings = settings
        self.vocabulary = vocabulary
        self._nlp = _load_pipeline(settings.spacy_model)
        self._lexicon = self._phrase_matcher(self._lexicon_entries())
        self._brands = self._phrase_matcher((T.BRAND, brand, False) for brand in vocabulary.brands)
        self._types = self._phrase_matcher((T.PRODUCT_TYPE, name, False) for name in vocabulary.product_types)
        self._sizes = self._size_matcher()
        # Column values repeat across items ("Black", "Navy/White"): parse each once.
        self._values = functools.lru_cache(maxsize=16384)(self._parse_values)

    # -- public -----------------------------------------------------------------

    def extract(self, item: CatalogItem) -> list[Entity]:
        """The item's entities, in EntityType order then text; [] when nothing is recognisable."""
        return self.extract_many([item])[0]

    def extract_transient(self, item: CatalogItem) -> list[Entity]:
        """:meth:`extract` for a long-running server: the strings this item adds
        to spaCy's vocabulary are freed afterwards, so a flood of novel text
        cannot grow memory without bound."""
        with self._nlp.memory_zone():
            return self.extract(item)

    def extract_many(self, items: Sequence[CatalogItem], progress: bool = False) -> list[list[Entity]]:
        """:meth:`extract` for many items, tagging titles in batches."""
        docs: Iterable[Doc] = self._nlp.pipe((normalize(item.title) for item in items), batch_size=_BATCH_SIZE)
        if progress:
            docs = tqdm(docs, total=len(items), desc="extracting entities", unit="item")
        return [self._extract(item, _Title(_set_keys(doc))) for item, doc in zip(items, docs, strict=True)]

    # -- matchers ---------------------------------------------------------------

    @staticmethod
    def _lexicon_entries() -> Iterator[tuple[EntityType, str, bool]]:
        for type_, table in TABLES.items():
            for variant, canonical in table.items():
                ambiguous = type_ in (T.COLOR, T.AUDIENCE) and bool({variant, canonical} & lexicon.AMBIGUOUS)
                yield type_, variant, ambiguous

    def _phrase_matcher(self, entries: Iterable[tuple[EntityType, str, bool]]) -> PhraseMatcher:
        """Matches on keys (NORM), so plural and singular forms both match.

        The match id encodes "type, ambiguous, variant"; the canonical text is
        looked up from the variant (brands and vocabulary types are canonical).
        """
        matcher = PhraseMatcher(self._nlp.vocab, attr="NORM")
        by_key: dict[str, list[Doc]] = {}
        for type_, variant, ambiguous in sorted(entries):
            key = f"{type_.value}\t{int(ambiguous)}\t{variant}"
            texts = {variant, variant.replace("-", " ")}
            by_key[key] = [_set_keys(doc) for doc in self._nlp.tokenizer.pipe(sorted(texts))]
        for key, docs in by_key.items():
            matcher.add(key, docs)
        return matcher

    def _phrases(self, matcher: PhraseMatcher, doc: Doc) -> list[_Match]:
        out = []
        for match_id, start, end in matcher(doc):
            type_value, ambiguous, variant = self._nlp.vocab.strings[match_id].split("\t")
            type_ = EntityType(type_value)
            out.append(_Match(type_, canonical_of(type_, variant), start, end, ambiguous == "1"))
        return out

    def _size_matcher(self) -> Matcher:
        """Numbers with units, pack counts, dimensions and size words (canonicalised in _size_matches).

        Few patterns with cheap predicates: the Matcher costs per pattern and token.
        """
        matcher = Matcher(self._nlp.vocab)
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
                tokens = [{"LOWER": tok.lower_} for tok in self._nlp.make_doc(variant)]
                matcher.add(f"{kind}\t{canonical}", [tokens])
        return matcher

    def _size_matches(self, title: _Title | None, doc: Doc) -> list[_Match]:
        """Sizes and quantities in `doc`; with a title, size words count only where
        a title names sizes ("..., Small", "Size M", "Queen Mattress")."""
        out = []
        for match_id, start, end in self._sizes(doc):
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
            elif title is None or self._names_size(title, kind, start, end):
                text = canonical
            if text:
                out.append(_Match(T.SIZE, text, start, end))
        return out

    @staticmethod
    def _names_size(title: _Title, kind: str, start: int, end: int) -> bool:
        doc = title.doc
        if start > 0 and doc[start - 1].lower_ == "size":
            return True
        if title.variant[start] and (end == len(doc) or doc[end].is_punct or doc[end].lower_ == "size"):
            return True  # ", Small," "(Twin/Full)"; not ", Full Script"
        if kind == "bed":
            return end < len(doc) and doc[end].lower_ in lexicon.BED_WORDS
        # A size word ending the title ("... Mini Dress X-Large"), not a bare letter.
        return end - 1 == title.last_word and len(doc[start:end].text) > 2

    # -- one item ---------------------------------------------------------------

    def _parse_values(self, raw: str, type_: EntityType, fallback: bool = True) -> tuple[str, ...]:
        """Canonical values of `type_` in a column or attribute value ("Black/Red" -> black, red)."""
        doc = _set_keys(self._nlp.make_doc(normalize(raw)))
        if type_ is T.SIZE:
            matches = self._size_matches(None, doc)
        else:
            matches = [m for m in self._phrases(self._lexicon, doc) if m.type is type_]
        found = tuple(m.text for m in _resolve(matches))
        if found or not fallback:
            return found
        if type_ is T.COLOR:
            # An unlisted color ("Mahogany Finish" -> "mahogany"), not junk ("Set F",
            # "Classic") nor a material ("Stainless Steel": the material entity says it).
            words = [w for w in normalize(raw).split() if w not in _COLOR_FILLERS]
            ok = (
                words
                and all(len(w) > 1 and w.replace("-", "").isalpha() for w in words)
                and not all(lexicon.stem(w) in GENERIC_STEMS for w in words)
                and not self._parse_values(raw, T.MATERIAL, fallback=False)
            )
            raw = " ".join(words) if ok else ""
        value = short(raw, MAX_WORDS + (type_ is T.SIZE))
        return (value,) if value else ()

    def _extract(self, item: CatalogItem, title: _Title) -> list[Entity]:
        chosen = _Chosen(self.settings.max_phrases)
        attributes = list(attribute_types(item.attributes))
        # 1. Structured columns and attributes.
        for raw in (item.brand, *(v for t, v in attributes if t is T.BRAND)):
            chosen.add(T.BRAND, canonical_brand(raw))
        for raw in (item.color, *(v for t, v in attributes if t is T.COLOR)):
            if raw:
                chosen.extend(T.COLOR, self._values(raw, T.COLOR))
                chosen.extend(T.MATERIAL, self._values(raw, T.MATERIAL, fallback=False), only_if_missing=True)
        for segment in item.category:
            chosen.add(T.AUDIENCE, lexicon.AUDIENCES.get(normalize(segment)))
        for type_, raw in attributes:
            if type_ is T.PRODUCT_TYPE:
                chosen.add(type_, canonical_type(raw))
            elif type_ not in (T.BRAND, T.COLOR):
                chosen.extend(type_, self._values(raw, type_))
        structured = chosen.types()

        # 2. The title: brand and product type first, as they shadow other matches.
        doc = title.doc
        brand = self._title_brand(title, chosen)
        covered: set[int] = set(brand)
        product_type = self._title_type(item, title, chosen, brand)
        covered.update(range(*product_type) if product_type else ())
        lexical = [
            m
            for m in _resolve(self._phrases(self._lexicon, doc) + self._size_matches(title, doc))
            if not (product_type and m.overlaps(*product_type)) and not m.overlaps(brand.start, brand.stop)
        ]
        # An ambiguous word counts where it alone names a variant: ", Chestnut,"
        # and "(Navy Multi)", but not ", Frosty Mint," nor "Oat Natural Extracts".
        matched = {i for m in lexical for i in range(m.start, m.end)}
        lexical = [m for m in lexical if not m.ambiguous or title.names_variant(m.start, matched)]
        audiences = [m.text for m in lexical if m.type is T.AUDIENCE]
        for m in lexical:
            covered.update(range(m.start, m.end))
            if m.type in structured:
                continue
            if m.type is T.AUDIENCE:
                chosen.add(T.AUDIENCE, _one_audience(audiences))
            elif m.type is T.SIZE:
                chosen.add_size(m.text)
            else:
                chosen.add(m.type, m.text)

        # 3. The description, for a material or color it states outright
        # ("Made of velvet", "Color: navy blue"). Other mentions are too often
        # of variants, accessories or anything else ("Devil in the White City").
        missing = not chosen.get(T.MATERIAL) or not chosen.get(T.COLOR)
        if self.settings.use_description and item.description and missing:
            doc = _set_keys(self._nlp.make_doc(normalize(item.description[: self.settings.description_chars])))
            for m in _resolve(self._phrases(self._lexicon, doc)):
                if m.type in (T.MATERIAL, T.COLOR) and _stated(doc, m.start):
                    chosen.add(m.type, m.text, only_if_missing=True)

        # 4. Fallback phrases: what the title says that no entity covers.
        type_start = product_type[0] if product_type else -1
        chosen.extend(T.PHRASE, self._title_phrases(title, covered, chosen, type_start))
        return chosen.entities(self.settings.max_entities_per_item)

    def _title_brand(self, title: _Title, chosen: _Chosen) -> range:
        """Token range of the item's brand in the title: the brand column's, or (choosing it)
        a vocabulary brand at the title's start or after "by" when the column is empty."""
        known = chosen.get(T.BRAND)
        if known:
            span = title.find(type_keys(known[0]), range(0))
            return range(*span) if span else range(0)
        first = title.words[0] if title.words else 0
        for m in sorted(self._phrases(self._brands, title.doc), key=lambda m: (m.start, -m.end)):
            multiword = m.end - m.start > 1
            after_by = m.start > 0 and title.doc[m.start - 1].lower_ == "by"
            if m.start == first or after_by or (multiword and m.start < first + _TITLE_BRAND_WINDOW):
                chosen.add(T.BRAND, m.text)
                return range(m.start, m.end)
        return range(0)

    def _title_type(self, item: CatalogItem, title: _Title, chosen: _Chosen, brand: range) -> tuple[int, int] | None:
        """Choose the product type; return its token span in the title, if it is there.

        Order: a type attribute; a category type the title confirms (its
        head noun appears: ESCI files a headphone under "Cases"); the
        deepest category type; a vocabulary type in the title's main phrase
        (longest, then nearest its end); the head noun of the main phrase; a
        vocabulary type elsewhere in the title.
        """
        known = chosen.get(T.PRODUCT_TYPE)
        if known:
            return self._locate_type(title, known[0], brand)
        levels = category_levels(tuple(item.category))
        for level in levels:
            hits = [(span, name) for name in level if (span := self._locate_type(title, name, brand))]
            if hits:
                span, name = min(hits)
                chosen.add(T.PRODUCT_TYPE, name)
                return span
        unconfirmed = next((level[0] for level in levels if level), None)
        if unconfirmed:
            chosen.add(T.PRODUCT_TYPE, unconfirmed)
            return None
        candidates = [
            m
            for m in self._phrases(self._types, title.doc)
            if not m.overlaps(brand.start, brand.stop) and m.text not in LEXICON_TEXTS  # "fleece" is a material
        ]
        main = [m for m in candidates if m.start < title.main_end]
        head = _head_noun(title, brand)
        if main or head is None and candidates:
            pool = main or candidates
            segment = min(title.segment[m.start] for m in pool)
            best = max((m for m in pool if title.segment[m.start] == segment), key=lambda m: (m.end - m.start, m.end))
            chosen.add(T.PRODUCT_TYPE, best.text)
            return best.start, best.end
        if head is not None:
            chosen.add(T.PRODUCT_TYPE, lexicon.singularize(title.doc[head].lower_))
            return head, head + 1
        return None

    @staticmethod
    def _locate_type(title: _Title, name: str, brand: range) -> tuple[int, int] | None:
        """Where the title names product type `name`: the whole name, else its head noun."""
        keys = type_keys(name)
        return (
            title.find(keys, brand)
            or (title.find(keys[-1:], brand) if len(keys) > 1 else None)
            or title.find_compound(keys[-1], brand)
        )

    def _title_phrases(self, title: _Title, covered: set[int], chosen: _Chosen, type_start: int) -> list[str]:
        """Up to max_phrases short noun phrases of the title, in title order, made of words
        that no entity (nor an earlier phrase) covers: "dakota", "gordon ramsay", "dog".

        A phrase ends on a noun, or on a name-like word right before the product
        type: the tagger calls the model name of "dakota slipper" an adjective.
        """
        doc = title.doc
        taken = {w for texts in chosen.values() for text in texts for w in type_keys(text)}
        phrases: list[str] = []
        for run in title.runs():
            stretch: list[int] = []
            for i in [*run, -1]:  # -1 closes the last stretch
                if i >= 0 and i not in covered and _is_phrase_word(doc[i]) and doc[i].norm_ not in taken:
                    stretch.append(i)
                    continue
                if not (stretch and i == type_start and _name_like(doc[stretch[-1]])):
                    while stretch and doc[stretch[-1]].tag_ not in _NOUN_TAGS:
                        stretch.pop()
                if stretch and len(phrases) < self.settings.max_phrases:
                    words = stretch[-_PHRASE_WORDS:]
                    if len(words) > 1 and _hyphen_joined(doc, words[0]):  # not "friendly" of "eco-friendly"
                        words = words[1:]
                    text = doc[words[0] : words[-1] + 1].text
                    last = doc[words[-1]].lower_
                    phrases.append(text[: len(text) - len(last)] + lexicon.singularize(last))
                    taken.update(doc[w].norm_ for w in words)
                stretch = []
        return phrases


def _name_like(tok: Token) -> bool:
    """Could be a name ("dakota") rather than an adjective ("comfy", "padded", "washable")?"""
    return len(tok.text) >= 4 and not tok.lower_.endswith(_ADJECTIVE_SUFFIXES)


def _stated(doc: Doc, i: int) -> bool:
    """Whether a cue ("material:", "made of", "color:", "finished in") shortly precedes token i."""
    return any(tok.lower_ in _STATEMENT_CUES for tok in doc[max(0, i - _CUE_WINDOW) : i])


def _hyphen_joined(doc: Doc, i: int) -> bool:
    """Whether token i is the second half of a hyphenated word ("eco-friendly")."""
    return i > 1 and doc[i - 1].text == "-" and not doc[i - 1].whitespace_ and not doc[i - 2].whitespace_


def _is_phrase_word(tok: Token) -> bool:
    """A word worth a phrase: not generic, not a lexicon word, at least 2 letters."""
    word = tok.text.replace("-", "").replace("'", "")
    return (
        len(word) > 1
        and word.isalpha()
        and any(ch in "aeiouy" for ch in word)  # not a model code ("lxt", "tb")
        and tok.norm_ not in GENERIC_STEMS
        and tok.norm_ not in LEXICON_STEMS
    )


def _head_noun(title: _Title, brand: range) -> int | None:
    """The last content word of the title's first segment, before "with"/"for": its head noun.

    The tagger often takes a title's last noun for an adjective ("alexa voice
    remote"), so any content word that can end a noun phrase will do.
    """
    first = title.segment[title.words[0]] if title.words else 0
    words = [
        i
        for run in title.runs()
        for i in run
        if title.segment[i] == first
        and i < title.main_end
        and i not in brand
        and title.doc[i].tag_ in _HEAD_TAGS
        and _is_phrase_word(title.doc[i])
    ]
    return words[-1] if words else None


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


def _resolve(matches: list[_Match]) -> list[_Match]:
    """Non-overlapping matches: longest first, then the earlier type in EntityType order, then leftmost."""
    order = list(EntityType)
    kept: list[_Match] = []
    for m in sorted(matches, key=lambda m: (m.start - m.end, order.index(m.type), m.start, m.text)):
        if not any(k.overlaps(m.start, m.end) for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)


def _one_audience(audiences: list[str]) -> str | None:
    """One audience for the title's mentions: men and women -> unisex, several children's -> kids."""
    distinct = list(dict.fromkeys(audiences))
    if len(distinct) <= 1:
        return distinct[0] if distinct else None
    if "unisex" in distinct or {"men", "women"} <= set(distinct):
        return "unisex"
    if set(distinct) <= _CHILDREN:
        return "kids"
    return distinct[0]


class _Chosen:
    """The entity texts chosen so far, per type, in the order found; caps and de-duplication."""

    def __init__(self, max_phrases: int) -> None:
        self._texts: dict[EntityType, list[str]] = {}
        self._caps = {**_TYPE_CAPS, T.PHRASE: max_phrases}
        self._size_kinds: set[str] = set()

    def get(self, type_: EntityType) -> list[str]:
        return self._texts.get(type_, [])

    def types(self) -> frozenset[EntityType]:
        return frozenset(t for t, texts in self._texts.items() if texts)

    def values(self) -> Iterator[list[str]]:
        return iter(self._texts.values())

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
        """At most one size of each kind: a measure ("32 oz"), a count ("2 pack"), a fit ("large")."""
        if not text[0].isdigit():  # "size 8", "x-large", "queen"
            kind = "fit"
        else:
            kind = "count" if text.rsplit(" ", 1)[-1] in _COUNT_UNITS else "measure"
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
