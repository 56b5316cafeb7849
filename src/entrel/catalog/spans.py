"""Spans of a tagged title or description: segments and runs, typed phrase matches, the head noun, fallback phrases.

Titles are cut into segments at ",", "(", " - ", "|": a title's first
segment names the product, a short later one names a variant ("..., Black,
7 M US"), and matches never cross a cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Token

from entrel.catalog import lexicon
from entrel.catalog.canonical import ADJECTIVE_ENDINGS, GENERIC_STEMS, LEXICON_STEMS, MAX_WORDS, canonical_of, type_keys
from entrel.catalog.entity import EntityType

__all__ = [
    "Match",
    "Title",
    "TypedPhraseMatcher",
    "compound_end",
    "head_noun",
    "model_names",
    "resolve",
    "set_keys",
    "stated",
    "title_phrases",
]

# Longest phrase: two words share across items far better than three.
_PHRASE_WORDS = 2
_STATEMENT_CUES = frozenset(
    {"material", "materials", "made", "crafted", "constructed", "built", "color", "colour", "finish", "finished", "shown"}
)
_CUE_WINDOW = 3
_NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
_HEAD_TAGS = _NOUN_TAGS | {"JJ", "VBG", "VBN", "FW"}
_SEPARATORS = frozenset({",", ";", "|", "(", ")", "[", "]", "{", "}", ":", "•", "·", "!"})
# Separators only when spaced: "blue - red" cuts, "t-shirt" and "black/red" do not.
_SPACED_SEPARATORS = frozenset({"-", "/", "+", "&"})
# Units of measure: a title's last word ("... 600 x 600 dpi") but never its product type, nor a phrase.
_UNITS = lexicon.SPEC_UNITS | {v for v, unit in lexicon.SIZE_UNITS.items() if unit not in lexicon.NOUN_UNITS}
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)$")
# A measure, count or size written as one token ("144hz", "1080p", "4k", "1pk", "3xl", "8x10"): not a model.
_GLUED_UNITS = sorted(
    {u for u in lexicon.SIZE_UNITS if " " not in u} | lexicon.SPEC_UNITS | {"p", "k", "x", "xl", "xxl", "xxxl"},
    key=len,
    reverse=True,
)
_GLUED_MEASURE = re.compile(rf"^\d+(?:\.\d+)?(?:{'|'.join(map(re.escape, _GLUED_UNITS))})$|^\d+(?:\.\d+)?x\d")
_ADJECTIVE_SUFFIXES = (*ADJECTIVE_ENDINGS, "y", "ed", "ive", "ing", "ish", "proof", "free", "est", "er")


@dataclass(frozen=True)
class Match:
    """A typed span of a title (token offsets) with the canonical text it stands for."""

    type: EntityType
    text: str
    start: int
    end: int
    ambiguous: bool = False

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


def resolve(matches: list[Match]) -> list[Match]:
    """Non-overlapping matches: longest first, then the earlier type in EntityType order, then leftmost."""
    order = list(EntityType)
    kept: list[Match] = []
    for m in sorted(matches, key=lambda m: (m.start - m.end, order.index(m.type), m.start, m.text)):
        if not any(k.overlaps(m.start, m.end) for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)


def set_keys(doc: Doc) -> Doc:
    """Store each token's matching key (see lexicon.stem) as its NORM, for the phrase matchers.

    Done after tagging: the tagger reads NORM.
    """
    for tok in doc:
        tok.norm_ = lexicon.stem(tok.lower_)
    return doc


class TypedPhraseMatcher:
    """Finds typed phrases (lexicon words, vocabulary brands or types) in a doc from :func:`set_keys`.

    Matches on keys (NORM), so plural and singular forms both match.
    """

    def __init__(self, nlp: Language, entries: Iterable[tuple[EntityType, str, bool]]) -> None:
        """`entries`: (type, variant, ambiguous). The match id encodes "type, ambiguous, variant"; the
        canonical text is looked up from the variant (brands and vocabulary types are canonical)."""
        self._nlp = nlp
        self._matcher = PhraseMatcher(nlp.vocab, attr="NORM")
        by_key: dict[str, list[Doc]] = {}
        for type_, variant, ambiguous in sorted(entries):
            key = f"{type_.value}\t{int(ambiguous)}\t{variant}"
            texts = {variant, variant.replace("-", " ")}
            by_key[key] = [set_keys(doc) for doc in nlp.tokenizer.pipe(sorted(texts))]
        for key, docs in by_key.items():
            self._matcher.add(key, docs)

    def __call__(self, doc: Doc) -> list[Match]:
        out = []
        for match_id, start, end in self._matcher(doc):
            type_value, ambiguous, variant = self._nlp.vocab.strings[match_id].split("\t")
            type_ = EntityType(type_value)
            out.append(Match(type_, canonical_of(type_, variant), start, end, ambiguous == "1"))
        return out


class Title:
    """A tagged title and what the rules read off it: segments, the main phrase, word keys."""

    def __init__(self, doc: Doc, cased: str | None = None) -> None:
        """`doc` is the tagged normalised title; `cased` the same text in the title's own case, when known."""
        self.doc = doc
        self.cased = cased
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

    def written_lower(self, i: int) -> bool:
        """Whether the title writes token i in lower case (unknown counts as not); asked of a few tokens only."""
        tok = self.doc[i]
        return self.cased is not None and self.cased[tok.idx : tok.idx + len(tok)].islower()

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

    def locate(self, name: str, skip: range) -> tuple[int, int] | None:
        """Where the title names product type `name` outside `skip`: the whole name, else its head noun."""
        keys = type_keys(name)
        return (
            self.find(keys, skip) or (self.find(keys[-1:], skip) if len(keys) > 1 else None) or self.find_compound(keys[-1], skip)
        )

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


def stated(doc: Doc, i: int) -> bool:
    """Whether a cue ("material:", "made of", "color:", "finished in") shortly precedes token i."""
    return any(tok.lower_ in _STATEMENT_CUES for tok in doc[max(0, i - _CUE_WINDOW) : i])


def head_noun(title: Title, brand: range) -> int | None:
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


def compound_end(title: Title, start: int, end: int) -> int:
    """Where the noun compound that a type at tokens [`start`, `end`) starts really ends.

    English puts the head of a compound last: in "notebook case" and "mobile
    phone case" the item is a case, and "notebook" or "phone" only says what it
    fits. So a type the vocabulary finds runs on over the lower-case nouns right
    after it in the same segment of the main phrase (no colour, material, unit
    or code): "notebook case", not "notebook", nor "notebook black". Capitals
    end it: catalogs that write a category into the title write it in lower
    case ("HP FA831AA battery charger"), while capitalised words after a type
    are most often a spec or a name ("battery Alkaline", "Running Shoe Racer").
    A type keeps at most MAX_WORDS words, so the run stops there too.
    """
    doc, last = title.doc, end - 1
    while (
        end - start < MAX_WORDS
        and end < title.main_end
        and title.segment[end] == title.segment[last]
        and doc[end - 1].whitespace_
        and title.written_lower(end)
        and doc[end].tag_ in _NOUN_TAGS
        and _is_phrase_word(doc[end])
    ):
        end += 1
    return end


def title_phrases(title: Title, covered: set[int], entity_texts: Iterable[str], type_start: int, max_phrases: int) -> list[str]:
    """Up to max_phrases short noun phrases of the title, in title order, made of words that
    no entity (of `entity_texts`, nor an earlier phrase) covers: "dakota", "gordon ramsay", "dog".

    A phrase ends on a noun, or on a name-like word right before the product
    type (at `type_start`): the tagger calls the model name of "dakota slipper" an adjective.
    """
    doc = title.doc
    taken = {w for text in entity_texts for w in type_keys(text)}
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
            if stretch and len(phrases) < max_phrases:
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


def _hyphen_joined(doc: Doc, i: int) -> bool:
    """Whether token i is the second half of a hyphenated word ("eco-friendly")."""
    return i > 1 and doc[i - 1].text == "-" and not doc[i - 1].whitespace_ and not doc[i - 2].whitespace_


def _is_phrase_word(tok: Token) -> bool:
    """A word worth a phrase or a head noun: not generic, not a lexicon word nor a unit, at least 2 letters."""
    word = tok.text.replace("-", "").replace("'", "")
    return (
        len(word) > 1
        and word.isalpha()
        and any(ch in "aeiouy" for ch in word)  # not a model code ("lxt", "tb")
        and tok.norm_ not in GENERIC_STEMS
        and tok.norm_ not in LEXICON_STEMS
        and tok.lower_ not in _UNITS
    )


def _code_like(text: str) -> bool:
    """A model or series code: letters and digits in one token ("c6380", "ds-940dw", "s10"), not an
    ordinal ("2nd") nor a measure written as one token ("144hz")."""
    bare = text.replace("-", "")
    return (
        len(bare) >= 3
        and bare.isascii()
        and bare.isalnum()
        and any(c.isdigit() for c in bare)
        and any(c.isalpha() for c in bare)
        and not _ORDINAL.match(bare)
        and not _GLUED_MEASURE.match(bare)
    )


def model_names(title: Title, covered: set[int], limit: int) -> list[Match]:
    """Up to `limit` model names of the title, in title order, as phrases: a code token with the
    name word before it ("photosmart c6380"), alone where no name word precedes it ("ds-940dw" after
    its brand), or a name word and a one- or two-digit number ("playstation 4", "air 2").

    Shoppers of electronics and parts search by model, and the phrase rules
    skip every token with a digit: without this the model is lost.
    """
    doc = title.doc
    found: list[Match] = []
    for i, tok in enumerate(doc):
        if len(found) >= limit:
            break
        if i in covered or title.separator[i]:
            continue
        before = i - 1
        named = (
            before >= 0
            and before not in covered
            and title.segment[before] == title.segment[i]
            and _is_phrase_word(doc[before])
            and not doc[before].is_stop
            and not _hyphen_joined(doc, before)  # "fi" of "wi-fi 6"
        )
        if _code_like(tok.text) or (named and tok.text.isascii() and tok.text.isdigit() and len(tok.text) <= 2):
            start = before if named else i
            found.append(Match(EntityType.PHRASE, doc[start : i + 1].text, start, i + 1))
    return found
