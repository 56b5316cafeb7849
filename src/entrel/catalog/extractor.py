"""Decomposing a catalog item into a few short, canonical, typed entities: the orchestrator.

Entity texts are cache keys shared by many products ("navy blue", "leather",
"office chair"): every rule prefers a canonical, reusable text over a
faithful but unique one, and an item gets only a handful of entities, since
online each uncached one costs a cross-encoder call.

Structured columns win. spaCy then reads the title (lowercased, as Title
Case confuses the tagger; tagger only: titles are not sentences, so the
parser's noun chunks are unreliable) for the types the columns lack, and the
start of the description for a material or color it states outright.

The rules live beside this module: canonical (column values and category
paths as entity texts), vocabulary (brands and types learned from a
catalog), spans (reading a tagged title: segments, phrase matches, fallback
phrases), sizes (sizes and quantities), selection (caps and choosing).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from entrel.catalog import lexicon
from entrel.catalog.canonical import (
    GENERIC_STEMS,
    LEXICON_TEXTS,
    MAX_WORDS,
    TABLES,
    attribute_types,
    canonical_brand,
    canonical_type,
    category_levels,
    short,
    type_keys,
)
from entrel.catalog.entity import Entity, EntityType
from entrel.catalog.reader import CatalogItem
from entrel.catalog.selection import Chosen, one_audience
from entrel.catalog.sizes import SizeMatcher
from entrel.catalog.spans import (
    Title,
    TypedPhraseMatcher,
    compound_end,
    head_noun,
    model_names,
    resolve,
    set_keys,
    stated,
    title_phrases,
)
from entrel.catalog.vocabulary import Vocabulary
from entrel.config import ExtractionSettings
from entrel.errors import EntrelError
from entrel.text import cased_like, normalize

__all__ = ["EntityExtractor", "ExtractionError", "Vocabulary"]

T = EntityType
# A vocabulary brand found in a title counts only near its start (a
# one-word brand only as its first word: "apple" mid-title is fruit) or
# right after "by" ("... Coffee Mugs by Kiln & Co").
_TITLE_BRAND_WINDOW = 5
_BATCH_SIZE = 256
_COLOR_FILLERS = frozenset({"finish", "finished", "color", "colour", "colored", "tone", "shade"})


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


class EntityExtractor:
    """Turns catalog items into typed entities; deterministic for a given vocabulary and settings."""

    def __init__(self, settings: ExtractionSettings, vocabulary: Vocabulary) -> None:
        self.settings = settings
        self.vocabulary = vocabulary
        self._nlp = _load_pipeline(settings.spacy_model)
        self._lexicon = TypedPhraseMatcher(self._nlp, self._lexicon_entries())
        self._brands = TypedPhraseMatcher(self._nlp, ((T.BRAND, brand, False) for brand in vocabulary.brands))
        self._types = TypedPhraseMatcher(self._nlp, ((T.PRODUCT_TYPE, name, False) for name in vocabulary.product_types))
        self._sizes = SizeMatcher(self._nlp)
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
        return [
            self._extract(item, Title(set_keys(doc), cased_like(item.title, doc.text)))
            for item, doc in zip(items, docs, strict=True)
        ]

    # -- one item ---------------------------------------------------------------

    @staticmethod
    def _lexicon_entries() -> Iterator[tuple[EntityType, str, bool]]:
        for type_, table in TABLES.items():
            for variant, canonical in table.items():
                ambiguous = type_ in (T.COLOR, T.AUDIENCE) and bool({variant, canonical} & lexicon.AMBIGUOUS)
                yield type_, variant, ambiguous

    def _parse_values(self, raw: str, type_: EntityType, fallback: bool = True) -> tuple[str, ...]:
        """Canonical values of `type_` in a column or attribute value ("Black/Red" -> black, red)."""
        doc = set_keys(self._nlp.make_doc(normalize(raw)))
        if type_ is T.SIZE:
            matches = self._sizes(doc, None)
        else:
            matches = [m for m in self._lexicon(doc) if m.type is type_]
        found = tuple(m.text for m in resolve(matches))
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

    def _extract(self, item: CatalogItem, title: Title) -> list[Entity]:
        chosen = Chosen(self.settings.max_phrases + self.settings.max_model_names)
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
            for m in resolve(self._lexicon(doc) + self._sizes(doc, title))
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
                chosen.add(T.AUDIENCE, one_audience(audiences))
            elif m.type is T.SIZE:
                chosen.add_size(m.text)
            else:
                chosen.add(m.type, m.text)

        # 3. The description, for a material or color it states outright
        # ("Made of velvet", "Color: navy blue"). Other mentions are too often
        # of variants, accessories or anything else ("Devil in the White City").
        missing = not chosen.get(T.MATERIAL) or not chosen.get(T.COLOR)
        if self.settings.use_description and item.description and missing:
            doc = set_keys(self._nlp.make_doc(normalize(item.description[: self.settings.description_chars])))
            for m in resolve(self._lexicon(doc)):
                if m.type in (T.MATERIAL, T.COLOR) and stated(doc, m.start):
                    chosen.add(m.type, m.text, only_if_missing=True)

        # 4. Phrases: the model name, then what else the title says that no entity covers.
        type_start = product_type[0] if product_type else -1
        for m in model_names(title, covered, self.settings.max_model_names):
            chosen.add(T.PHRASE, m.text)
            covered.update(range(m.start, m.end))
        chosen.extend(T.PHRASE, title_phrases(title, covered, chosen.texts(), type_start, self.settings.max_phrases))
        return chosen.entities(self.settings.max_entities_per_item)

    def _title_brand(self, title: Title, chosen: Chosen) -> range:
        """Token range of the item's brand in the title: the brand column's, or (choosing it)
        a vocabulary brand at the title's start or after "by" when the column is empty."""
        known = chosen.get(T.BRAND)
        if known:
            span = title.find(type_keys(known[0]), range(0))
            return range(*span) if span else range(0)
        first = title.words[0] if title.words else 0
        for m in sorted(self._brands(title.doc), key=lambda m: (m.start, -m.end)):
            multiword = m.end - m.start > 1
            after_by = m.start > 0 and title.doc[m.start - 1].lower_ == "by"
            if m.start == first or after_by or (multiword and m.start < first + _TITLE_BRAND_WINDOW):
                chosen.add(T.BRAND, m.text)
                return range(m.start, m.end)
        return range(0)

    def _title_type(self, item: CatalogItem, title: Title, chosen: Chosen, brand: range) -> tuple[int, int] | None:
        """Choose the product type; return its token span in the title, if it is there.

        Order: a type attribute; a category type the title confirms (its
        head noun appears: ESCI files a headphone under "Cases"); the
        deepest category type; a vocabulary type in the title's main phrase
        (longest, then nearest its end), with the nouns it modifies ("notebook
        case"); the head noun of the main phrase; a
        vocabulary type elsewhere in the title.
        """
        known = chosen.get(T.PRODUCT_TYPE)
        if known:
            return title.locate(known[0], brand)
        levels = category_levels(tuple(item.category))
        for level in levels:
            hits = [(span, name) for name in level if (span := title.locate(name, brand))]
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
            for m in self._types(title.doc)
            if not m.overlaps(brand.start, brand.stop) and m.text not in LEXICON_TEXTS  # "fleece" is a material
        ]
        main = [m for m in candidates if m.start < title.main_end]
        head = head_noun(title, brand)
        if main or head is None and candidates:
            pool = main or candidates
            segment = min(title.segment[m.start] for m in pool)
            best = max((m for m in pool if title.segment[m.start] == segment), key=lambda m: (m.end - m.start, m.end))
            # A vocabulary type followed by nouns modifies them: "notebook case" is a case.
            end = compound_end(title, best.start, best.end)
            tail = " ".join(tok.lower_ for tok in title.doc[best.end : end])
            compound = canonical_type(f"{best.text} {tail}") if tail else None
            chosen.add(T.PRODUCT_TYPE, compound or best.text)
            return best.start, end if compound else best.end
        if head is not None:
            chosen.add(T.PRODUCT_TYPE, lexicon.singularize(title.doc[head].lower_))
            return head, head + 1
        return None
