"""What an override is, and how one typed by an operator becomes the keys serving matches.

Queries go through the one normalisation of cache keys (`entrel.text`) and
entity texts through the extractor's canonical forms, so an override keyed
here is hit by exactly the (query, entity) pairs the engine looks up.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from entrel.catalog.canonical import canonical_entity
from entrel.catalog.entity import Entity, EntityType
from entrel.errors import EntrelError
from entrel.text import normalize

__all__ = [
    "ANY_QUERY",
    "InvalidOverride",
    "Override",
    "OverrideKey",
    "OverrideNotFound",
    "make_override",
    "override_key",
    "override_query",
    "utc_now",
]

# The query of an override that applies to every query.
ANY_QUERY = "*"
_MAX_REASON_CHARS = 500


class InvalidOverride(EntrelError, ValueError):
    """An override that cannot be stored (empty query, score outside [0, 1], unknown type, no reason...)."""


class OverrideNotFound(EntrelError, LookupError):
    """No override has the key a deletion names."""


@dataclass(frozen=True, order=True)
class OverrideKey:
    """What an override applies to: a normalised query (or `*`), an entity type and a canonical text.

    An empty text means the whole type is ignored for the query.
    """

    query: str
    type: EntityType
    text: str = ""

    @property
    def ignores_type(self) -> bool:
        return not self.text

    @property
    def entity(self) -> Entity:
        return Entity(self.type, self.text)

    def to_bytes(self) -> bytes:
        """The LMDB key: unit separators cannot occur in normalised text (control characters are dropped)."""
        return "\x1f".join((self.query, self.type.value, self.text)).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> OverrideKey:
        query, type_, text = raw.decode("utf-8").split("\x1f")
        return cls(query, EntityType(type_), text)

    def describe(self) -> str:
        what = f"{self.type.label} (every entity of the type ignored)" if self.ignores_type else self.entity.render()
        return f"query {self.query!r}, {what}"


@dataclass(frozen=True)
class Override:
    """One override in force; `score` is None where the type is ignored (it counts as neutral)."""

    key: OverrideKey
    score: float | None
    reason: str
    # Who set it: the role of the token used (admin), or "local" for a CLI call on the store itself.
    principal: str
    updated_at: str

    def to_json(self) -> str:
        record = asdict(self)
        record["key"] = {"query": self.key.query, "type": self.key.type.value, "text": self.key.text}
        return json.dumps(record, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Override:
        record = json.loads(text)
        key = record.pop("key")
        return cls(OverrideKey(key["query"], EntityType(key["type"]), key["text"]), **record)


def override_query(query: str, max_query_chars: int) -> str:
    """The query as cache keys have it (`entrel.text.normalize`), or `*`; InvalidOverride when empty or too long."""
    query = query.strip()
    if query == ANY_QUERY:
        return query
    if len(query) > max_query_chars:
        raise InvalidOverride(f"query is {len(query)} characters; the limit is server.max_query_chars={max_query_chars}")
    normalized = normalize(query)
    if not normalized:
        raise InvalidOverride(f"query is empty (nothing left after normalisation); use {ANY_QUERY!r} for every query")
    if len(normalized) > max_query_chars:
        raise InvalidOverride(f"query is over server.max_query_chars={max_query_chars} after normalisation")
    return normalized


def override_key(query: str, type_: str, text: str, max_query_chars: int) -> OverrideKey:
    """The key of an override as typed: query normalised (or `*`), type checked, text canonicalised ('' = the type)."""
    try:
        entity_type = EntityType(normalize(type_).replace(" ", "_"))
    except ValueError:
        known = ", ".join(t.value for t in EntityType)
        raise InvalidOverride(f"unknown entity type {type_[:40]!r}; one of: {known}") from None
    canonical = ""
    if text.strip():
        canonical = canonical_entity(entity_type, text) or ""
        if not canonical:
            raise InvalidOverride(f"{text[:40]!r} is no {entity_type.label} the extractor would keep (junk or empty)")
    return OverrideKey(override_query(query, max_query_chars), entity_type, canonical)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_override(key: OverrideKey, score: float | None, reason: str, principal: str) -> Override:
    """An override checked for storing: a score in [0, 1] for an entity, None to ignore a whole type; a reason."""
    if score is None and not key.ignores_type:
        raise InvalidOverride("ignoring applies to a whole type: leave the entity text empty")
    if score is not None:
        if key.ignores_type:
            raise InvalidOverride("the entity text is empty: give the entity's text, or ignore the whole type")
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise InvalidOverride(f"score must be a number within [0, 1]; got {score}")
    reason = reason.strip()
    if not reason:
        raise InvalidOverride("a reason is required (it is shown in explanations and kept in the audit log)")
    if len(reason) > _MAX_REASON_CHARS:
        raise InvalidOverride(f"reason is {len(reason)} characters; the limit is {_MAX_REASON_CHARS}")
    return Override(key, score, reason, principal, utc_now())
