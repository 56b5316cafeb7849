"""Scoring a query against items: cache lookup, live fallback, soft logic.

The domain core of the server, free of gRPC types so tests, the evaluation
and the benchmark drive exactly what the server runs.

Per request: normalise the query; gather the items' entity ids from the
snapshot into a padded (items x entities) matrix; read the query's cached
row once and look every entity up in it with numpy; send the distinct
misses to the shared micro-batcher, bounded by the request's deadline and a
per-request cap; fill the matrix and let the aggregator combine each row;
blend in the item-level similarity (query vector . item vector, both
precomputed where the snapshot has them) with its configured weight.

Operators' overrides (`entrel.overrides`) replace looked-up scores before
the live step, so an overridden miss is not sent to the model at all; the
answer is what scoring it and then overriding would give. A batch of
groups (ScoreBatch) runs each step for every group, with one snapshot,
one row read per distinct query and one live submission for all misses:
a group's answer is exactly what ScoreItems gives it alone.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from entrel.cache import SnapshotView
from entrel.cache.misslog import MissLogWriter
from entrel.catalog import CatalogItem, Entity, EntityType, item_text
from entrel.config import Settings
from entrel.errors import EntrelError
from entrel.logic import NEUTRAL, Aggregate, Aggregator
from entrel.logic.exclusion import excluded_terms, violated_exclusion
from entrel.overrides import OverrideTable, QueryOverrides
from entrel.scoring import TextEncoder, similarities
from entrel.service import metrics
from entrel.service.batcher import MicroBatcher, Overloaded
from entrel.service.extraction import InlineExtraction
from entrel.service.limits import inline_problem
from entrel.text import normalize

__all__ = [
    "EntityScore",
    "Group",
    "InvalidRequest",
    "ItemRequest",
    "ItemResult",
    "ItemStatus",
    "RelevanceEngine",
    "Role",
    "ScoreResult",
    "SnapshotSource",
    "Source",
    "ValidQuery",
]

log = logging.getLogger(__name__)


class InvalidRequest(EntrelError, ValueError):
    """The request itself is wrong (empty or over-long query, too many items)."""


class Source(StrEnum):
    CACHED = "cached"
    LIVE = "live"
    PRIOR = "prior"
    # Set by an operator (entrel override set); the explanation carries its reason.
    OVERRIDE = "override"


class Role(StrEnum):
    """What an entity is to the query, read off its score (see entrel.logic)."""

    MATCHES = "matches"
    NEUTRAL = "neutral"
    CONTRADICTS = "contradicts"


class ItemStatus(StrEnum):
    OK = "ok"
    UNKNOWN_ITEM = "unknown_item"
    NO_ENTITIES = "no_entities"
    DEGRADED = "degraded"


# Codes of the per-slot source matrix.
_PAD, _CACHED, _LIVE, _PRIOR, _OVERRIDE = 0, 1, 2, 3, 4
_SOURCE_OF_CODE = {_CACHED: Source.CACHED, _LIVE: Source.LIVE, _PRIOR: Source.PRIOR, _OVERRIDE: Source.OVERRIDE}
# Codes of entity types in the per-slot type matrix (-1 in padding).
_TYPES = tuple(EntityType)
_TYPE_CODE = {t: np.int8(i) for i, t in enumerate(_TYPES)}
# Item status codes (by severity) with their messages.
_OK, _UNKNOWN, _EMPTY, _DEGRADED = range(4)
_NO_SIMILARITY = "similarity not computed within the request deadline: scored by its entities alone"
# Inline item texts encoded per step of the similarity term, the deadline checked between steps.
_ENCODE_CHUNK = 8
_STATUSES = (
    (ItemStatus.OK, ""),
    (ItemStatus.UNKNOWN_ITEM, ""),  # message depends on whether a snapshot is served
    (ItemStatus.NO_ENTITIES, "no entities extracted: not judged"),
    (ItemStatus.DEGRADED, "some entities got the prior score"),
)


class SnapshotSource(Protocol):
    """Hands out the snapshot to use for one request (see SnapshotWatcher)."""

    def current(self) -> SnapshotView | None: ...


@dataclass(frozen=True)
class ValidQuery:
    """A query that passed :meth:`RelevanceEngine.validate` for its request, so scoring does not check it again."""

    normalized: str


@dataclass(frozen=True)
class ItemRequest:
    """An item by catalog id, or sent inline with its fields."""

    item_id: str
    inline: CatalogItem | None = None


@dataclass(frozen=True)
class Group:
    """One query and its items within a batch: answered as a call of its own would be."""

    query: str | ValidQuery
    items: Sequence[ItemRequest]
    explain: bool = False


@dataclass(frozen=True)
class EntityScore:
    entity: Entity
    score: float
    source: Source
    lift: float
    breaks_match: bool
    role: Role
    # The entity that covers the query best.
    covers: bool
    # Its type's weight in the compatibility half.
    weight: float
    note: str = ""
    # Why an operator set this score (source OVERRIDE).
    reason: str = ""


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    score: float
    status: ItemStatus
    message: str = ""
    title: str = ""
    entities: list[EntityScore] | None = None
    # The two halves of the entity score (see entrel.logic).
    coverage: float = 0.0
    compatibility: float = 1.0
    # score = (1 - w) * entity_score + w * similarity (w: ScoreResult.similarity_weight),
    # times 1 - ScoreResult.exclusion_penalty when the title names what the query excludes.
    entity_score: float = 0.0
    similarity: float = 0.0
    # The excluded term ("without X") the item's title names; "" when none.
    excluded: str = ""


@dataclass
class ScoreResult:
    items: list[ItemResult]
    snapshot_id: str
    model_fingerprint: str
    tnorm: str
    normalized_query: str
    query_cached: bool
    cache_hits: int = 0
    cache_misses: int = 0
    live_scored_pairs: int = 0
    prior_pairs: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    # 0 when the term is off or the snapshot holds no item vectors.
    similarity_weight: float = 0.0
    query_vector_cached: bool = False
    # What an item loses for naming a term the query excludes (entrel.logic.exclusion).
    exclusion_penalty: float = 0.0


@dataclass
class _Similarity:
    """Per item: cosine with the query, and whether it could not be computed in time (inline items)."""

    values: np.ndarray
    unscored: np.ndarray


@dataclass
class _Resolved:
    """Items as a padded entity-id matrix; ids >= len(snapshot entities) are request-local."""

    ids: np.ndarray
    counts: np.ndarray
    # Row of each item in the snapshot's tables, -1 when not there.
    rows: np.ndarray
    # Found in the snapshot / sent inline.
    known: np.ndarray
    inline: np.ndarray
    local_entities: list[Entity]
    titles: list[str]
    # Inline items whose extraction did not start before the deadline.
    unextracted: frozenset[int] = frozenset()


@dataclass
class _Pending:
    """One group between its lookup and its answer."""

    items: Sequence[ItemRequest]
    explain: bool
    resolved: _Resolved
    scores: np.ndarray
    sources: np.ndarray
    result: ScoreResult
    # Override reasons by entity id.
    reasons: dict[int, str]


class RelevanceEngine:
    """Scores items for a query; thread-safe, one per server."""

    def __init__(
        self,
        settings: Settings,
        fingerprint: str,
        snapshot: SnapshotSource,
        batcher: MicroBatcher,
        miss_log: MissLogWriter | None = None,
        encoder: TextEncoder | None = None,
        overrides: OverrideTable | None = None,
        extraction: InlineExtraction | None = None,
    ) -> None:
        self.settings = settings
        self.fingerprint = fingerprint
        self._snapshot = snapshot
        self._batcher = batcher
        self._miss_log = miss_log
        # The bi-encoder of the similarity term; None when its weight is 0.
        self._encoder = encoder
        # Operators' overrides; None serves the model's scores alone.
        self.overrides = overrides
        self.aggregator = Aggregator.from_settings(settings.logic)
        # Type code of every snapshot entity id, built once per snapshot.
        self._entity_types: dict[str, np.ndarray] = {}
        # Type weight by type code; the last entry (1.0) is for padding.
        self._weight_of_type = np.array([self.aggregator.weights.of_type(t.value) for t in _TYPES] + [1.0], dtype=np.float32)
        if extraction is None:
            extraction = InlineExtraction(settings.extraction, settings.server.inline_extraction_workers)
            # Its worker processes end with the engine, closed or not.
            weakref.finalize(self, extraction.close)
        self._extraction = extraction
        self._inline_slots = threading.BoundedSemaphore(settings.server.max_inline_requests)
        self._inline_in_flight = 0
        self._inline_count_lock = threading.Lock()

    # -- request validation ------------------------------------------------

    def validate(self, query: str, n_items: int) -> ValidQuery:
        """The normalised query of a request of `n_items` items, or InvalidRequest naming the limit broken."""
        limits = self.settings.server
        if len(query) > limits.max_query_chars:
            raise InvalidRequest(
                f"query is {len(query)} characters; the limit is server.max_query_chars={limits.max_query_chars}"
            )
        normalized = normalize(query)
        if not normalized:
            raise InvalidRequest("query is empty (nothing left after normalisation)")
        if len(normalized) > limits.max_query_chars:
            raise InvalidRequest(
                f"query is {len(normalized)} characters after normalisation; "
                f"the limit is server.max_query_chars={limits.max_query_chars}"
            )
        if n_items > limits.max_items:
            raise InvalidRequest(f"{n_items} items requested; the limit is server.max_items={limits.max_items}")
        return ValidQuery(normalized)

    def validate_batch(self, groups: Sequence[tuple[str | ValidQuery, int]]) -> list[ValidQuery]:
        """The normalised query of each (query, item count) group, or InvalidRequest naming the limit or the group."""
        limits = self.settings.server
        if len(groups) > limits.max_batch_groups:
            raise InvalidRequest(f"{len(groups)} groups; the limit is server.max_batch_groups={limits.max_batch_groups}")
        total = sum(n for _, n in groups)
        if total > limits.max_batch_items:
            raise InvalidRequest(f"{total} items over all groups; the limit is server.max_batch_items={limits.max_batch_items}")
        valid = []
        for g, (query, n_items) in enumerate(groups):
            try:
                valid.append(query if isinstance(query, ValidQuery) else self.validate(query, n_items))
            except InvalidRequest as exc:
                raise InvalidRequest(f"groups[{g}]: {exc}") from None
        return valid

    # -- scoring -----------------------------------------------------------

    def score(
        self, query: str | ValidQuery, items: Sequence[ItemRequest], explain: bool = False, deadline: float | None = None
    ) -> ScoreResult:
        """Score `items` for `query` (checked here unless it comes from `validate`); `deadline` is on the monotonic clock."""
        started = time.perf_counter()
        valid = query if isinstance(query, ValidQuery) else self.validate(query, len(items))
        if problem := inline_problem(((i, r.inline) for i, r in enumerate(items) if r.inline), self.settings.server):
            raise InvalidRequest(problem)
        return self._run([Group(valid, items, explain)], deadline, started)[0]

    def score_batch(self, groups: Sequence[Group], deadline: float | None = None) -> list[ScoreResult]:
        """Score every group as :meth:`score` would, sharing the snapshot reads and one live submission.

        A group that breaks a limit refuses the whole batch (InvalidRequest
        naming `groups[i]`), so a caller never gets half an answer.
        """
        started = time.perf_counter()
        valid = self.validate_batch([(g.query, len(g.items)) for g in groups])
        for g, group in enumerate(groups):
            inline = ((i, r.inline) for i, r in enumerate(group.items) if r.inline)
            if problem := inline_problem(inline, self.settings.server):
                raise InvalidRequest(f"groups[{g}]: {problem}")
        return self._run([Group(v, g.items, g.explain) for v, g in zip(valid, groups, strict=True)], deadline, started)

    def _run(self, groups: list[Group], deadline: float | None, started: float) -> list[ScoreResult]:
        """Score validated groups, within one inline slot when any of them sends inline items."""
        if deadline is None:
            deadline = time.monotonic() + self.settings.server.default_deadline_ms / 1000
        if not any(r.inline is not None for g in groups for r in g.items):
            return self._score(groups, deadline, started)
        # Inline items cost extraction and live scoring: a few such requests at
        # a time, so they never hold every worker thread from cached requests.
        if not self._inline_slots.acquire(blocking=False):
            limit = self.settings.server.max_inline_requests
            raise Overloaded(f"{limit} requests with inline items are in flight (server.max_inline_requests); retry")
        with self._inline_count_lock:
            self._inline_in_flight += 1
            # Encoding inline texts for the similarity term is the costliest step left: only a
            # request alone with its inline items does it; under an inline flood they are scored
            # by their entities alone (DEGRADED, said in the message), which keeps deadlines.
            encode_inline = self._inline_in_flight == 1
        try:
            # Their extraction, live scoring and encoding keep the server busiest: keep a
            # fifth of their time back, so a scheduling stall cannot push the answer late.
            now = time.monotonic()
            return self._score(groups, now + 0.8 * (deadline - now), started, encode_inline)
        finally:
            with self._inline_count_lock:
                self._inline_in_flight -= 1
            self._inline_slots.release()

    def _score(self, groups: list[Group], deadline: float, started: float, encode_inline: bool = True) -> list[ScoreResult]:
        snap = self._snapshot.current()
        overrides = self.overrides.current() if self.overrides is not None else None
        rows: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        pending = []
        for group in groups:
            assert isinstance(group.query, ValidQuery), "validated by score or score_batch"
            normalized = group.query.normalized
            excludes = bool(self.settings.exclusion.penalty and excluded_terms(normalized))
            resolved = self._resolve(snap, group.items, group.explain or excludes, deadline)
            if normalized not in rows:  # one read per distinct query of a batch
                rows[normalized] = snap.row(normalized) if snap is not None else None
            scores, sources, hits = self._lookup(rows[normalized], resolved.ids)
            chosen = overrides.for_query(normalized) if overrides is not None else None
            reasons = {}
            if chosen is not None:
                reasons = self._apply_overrides(chosen, snap, resolved, scores, sources, group.explain)
            result = ScoreResult(
                items=[],
                snapshot_id=snap.snapshot_id if snap else "",
                model_fingerprint=self.fingerprint,
                tnorm=self.aggregator.tnorm_name,
                normalized_query=normalized,
                query_cached=rows[normalized] is not None,
                cache_hits=hits,
                exclusion_penalty=self.settings.exclusion.penalty,
            )
            pending.append(_Pending(group.items, group.explain, resolved, scores, sources, result, reasons))
        looked_up = time.perf_counter()
        all_notes = self._fill_misses(snap, pending, deadline)
        lived = time.perf_counter()
        for p, notes in zip(pending, all_notes, strict=True):
            result, resolved = p.result, p.resolved
            aggregate = self.aggregator(p.scores, resolved.counts, self._type_weights(snap, resolved), explain=p.explain)
            # Inline items' similarity starts no chunk in the last half of the time left: that is for the answer.
            now = time.monotonic()
            stop_encoding = deadline - 0.5 * max(0.0, deadline - now)
            similarity = self._similarity(snap, result.normalized_query, p.items, resolved, result, stop_encoding, encode_inline)
            aggregated = time.perf_counter()
            result.items = self._results(snap, p, aggregate, similarity, notes)
            done = time.perf_counter()
            result.timings_ms = {
                "lookup": (looked_up - started) * 1000,
                "live": (lived - looked_up) * 1000,
                "aggregate": (aggregated - lived) * 1000,
                "total": (done - started) * 1000,
            }
            metrics.CACHE_HITS.inc(result.cache_hits)
            metrics.CACHE_MISSES.inc(result.cache_misses)
            metrics.PRIOR_PAIRS.inc(result.prior_pairs)
        return [p.result for p in pending]

    def _apply_overrides(
        self,
        chosen: QueryOverrides,
        snap: SnapshotView | None,
        resolved: _Resolved,
        scores: np.ndarray,
        sources: np.ndarray,
        explain: bool,
    ) -> dict[int, str]:
        """Replace the scores operators overrode (an ignored type counts as neutral); with `explain`, their reasons by entity id.

        Ignored types first, then entity scores (see QueryOverrides for the precedence).
        """
        ids = resolved.ids
        valid = ids >= 0
        reasons: dict[int, str] = {}
        if chosen.types:
            slot_types = self._slot_types(snap, resolved)
            for type_, override in chosen.types.items():
                hit = valid & (slot_types == _TYPE_CODE[type_])
                scores[hit] = NEUTRAL
                sources[hit] = _OVERRIDE
                if explain:
                    reasons.update(dict.fromkeys(np.unique(ids[hit]).tolist(), override.reason))
        known, values, found = chosen.resolve(snap)
        # Entities of inline items the snapshot lacks have ids past the snapshot's, so appending keeps the order.
        first_local = snap.entity_count if snap is not None else 0
        local = [(first_local + k, o) for k, e in enumerate(resolved.local_entities) if (o := chosen.entity(e)) is not None]
        if local:
            known = np.concatenate([known, np.array([i for i, _ in local], dtype=np.int64)])
            values = np.concatenate([values, np.array([o.score for _, o in local], dtype=np.float32)])
            found = (*found, *(o for _, o in local))
        if known.size:
            pos = np.minimum(np.searchsorted(known, ids), known.size - 1)
            hit = valid & (known[pos] == ids)
            scores[hit] = values[pos[hit]]
            sources[hit] = _OVERRIDE
            if explain:
                reasons.update((int(known[k]), found[k].reason) for k in np.unique(pos[hit]).tolist())
        return reasons

    def prepare(self, snap: SnapshotView | None) -> None:
        """Start inline extraction with `snap`'s vocabulary ahead of requests (called when a snapshot is swapped in)."""
        self._extraction.use(*_vocabulary(snap))

    def close(self) -> None:
        """Stop the inline extraction workers."""
        self._extraction.close()

    def _slot_types(self, snap: SnapshotView | None, resolved: _Resolved) -> np.ndarray:
        """The type code of every slot of the padded entity matrix (-1 in padding)."""
        key = snap.snapshot_id if snap is not None else ""
        base = self._entity_types.get(key)
        if base is None:
            types = [_TYPE_CODE[snap.entity(i).type] for i in range(snap.entity_count)] if snap is not None else []
            base = np.array(types, dtype=np.int8)
            self._entity_types = {key: base}  # keep only the current snapshot's
        local = np.array([_TYPE_CODE[e.type] for e in resolved.local_entities], dtype=np.int8)
        # Padding (-1) indexes the trailing -1.
        return np.concatenate([base, local, np.full(1, -1, dtype=np.int8)])[resolved.ids]

    def _type_weights(self, snap: SnapshotView | None, resolved: _Resolved) -> np.ndarray:
        """The type weight of every slot of the padded entity matrix (1 in padding)."""
        return self._weight_of_type[self._slot_types(snap, resolved)]

    def _similarity(
        self,
        snap: SnapshotView | None,
        normalized: str,
        items: Sequence[ItemRequest],
        resolved: _Resolved,
        result: ScoreResult,
        deadline: float,
        encode_inline: bool,
    ) -> _Similarity:
        """Cosine of the query with each item's text (0 for unknown items); sets the response's weight.

        The term applies only with a snapshot that holds item vectors, so
        every item of a response is scored alike; inline items are encoded
        live, a chunk at a time while the deadline allows: those left are
        scored by their entities alone (and say so).
        """
        sims = _Similarity(np.zeros(len(items), dtype=np.float32), np.zeros(len(items), dtype=bool))
        if self._encoder is None or snap is None:
            return sims
        known = np.flatnonzero(resolved.known)
        vectors = snap.item_vectors(resolved.rows[known])
        if vectors is None:
            return sims
        query = snap.query_vector(normalized)
        result.query_vector_cached = query is not None
        if query is None:
            query = self._encoder.encode_query(normalized, deadline)
        if query is None:  # the encoder stayed busy: every item by its entities alone, flagged
            sims.unscored[:] = resolved.known | resolved.inline
            return sims
        if known.size:
            sims.values[known] = similarities(query, vectors)
        inline = [(i, item_text(r.inline)) for i, r in enumerate(items) if r.inline is not None]
        if not encode_inline:
            sims.unscored[[i for i, _ in inline]] = True
            inline = []
        last_chunk_s = 0.0  # a chunk starts only if one as long as the last still ends in time
        for start in range(0, len(inline), _ENCODE_CHUNK):
            chunk = inline[start : start + _ENCODE_CHUNK]
            began = time.monotonic()
            encoded = None
            if began + last_chunk_s < deadline:
                encoded = self._encoder.encode_by([text for _, text in chunk], deadline - last_chunk_s)
            if encoded is None:
                sims.unscored[[i for i, _ in inline[start:]]] = True
                break
            sims.values[[i for i, _ in chunk]] = similarities(query, encoded)
            last_chunk_s = time.monotonic() - began
        result.similarity_weight = self.settings.similarity.weight
        return sims

    def _extract_inline(self, snap: SnapshotView | None, items: list[CatalogItem], deadline: float) -> list[list[Entity] | None]:
        """Entities of each inline item (in worker processes), None for those not extracted in time.

        A request waits for its items until the middle of its time left,
        keeping the rest for live scoring and the answer, and degrades only
        its own items.
        """
        until = time.monotonic() + (deadline - time.monotonic()) / 2
        return self._extraction.extract(*_vocabulary(snap), items, until)

    def _resolve(self, snap: SnapshotView | None, items: Sequence[ItemRequest], with_titles: bool, deadline: float) -> _Resolved:
        """Each item's entity ids (snapshot or freshly extracted), and its title when `with_titles`
        (explanations show it; exclusions are tested against it)."""
        n = len(items)
        if snap is not None:
            # Inline items are extracted afresh even when their id is in the snapshot.
            rows = np.where([r.inline is None for r in items], snap.item_positions([r.item_id for r in items]), -1)
            known = rows >= 0
            ids, counts = snap.item_entity_ids(rows)
            n_snapshot_entities = snap.entity_count
        else:
            rows = np.full(n, -1, dtype=np.int64)
            known = np.zeros(n, dtype=bool)
            ids = np.full((n, 0), -1, dtype=np.int32)
            counts = np.zeros(n, dtype=np.int32)
            n_snapshot_entities = 0
        inline_rows = [i for i, r in enumerate(items) if r.inline is not None]
        local: list[Entity] = []
        unextracted: frozenset[int] = frozenset()
        if inline_rows:
            maybe = self._extract_inline(snap, [r.inline for r in items if r.inline is not None], deadline)
            unextracted = frozenset(row for row, e in zip(inline_rows, maybe, strict=True) if e is None)
            extracted = [e or [] for e in maybe]
            local_ids: dict[Entity, int] = {}
            width = max(ids.shape[1], max((len(e) for e in extracted), default=0))
            if width > ids.shape[1]:
                ids = np.pad(ids, ((0, 0), (0, width - ids.shape[1])), constant_values=-1)
            for row, entities in zip(inline_rows, extracted, strict=True):
                for col, entity in enumerate(entities):
                    known_id = snap.entity_id(entity) if snap is not None else None
                    if known_id is None:
                        known_id = local_ids.setdefault(entity, n_snapshot_entities + len(local_ids))
                    ids[row, col] = known_id
                counts[row] = len(entities)
            local = list(local_ids)
        titles = [""] * n
        if with_titles:
            titles = snap.titles([r.item_id for r in items]) if snap is not None else titles
            for i, r in enumerate(items):
                if r.inline is not None:
                    titles[i] = r.inline.title
        inline = np.zeros(n, dtype=bool)
        inline[inline_rows] = True
        return _Resolved(ids, counts, rows, known, inline, local, titles, unextracted)

    @staticmethod
    def _lookup(row: tuple[np.ndarray, np.ndarray] | None, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Scores (NEUTRAL where padded, NaN where missed) and source codes of every slot."""
        valid = ids >= 0
        scores = np.full(ids.shape, NEUTRAL, dtype=np.float32)
        sources = np.zeros(ids.shape, dtype=np.int8)
        wanted = ids[valid]
        found = np.full(wanted.shape, np.nan, dtype=np.float32)
        if row is not None and row[0].size and wanted.size:
            row_ids, row_scores = row
            pos = np.minimum(np.searchsorted(row_ids, wanted), row_ids.size - 1)
            hit = row_ids[pos] == wanted
            found[hit] = row_scores[pos[hit]]
        scores[valid] = found
        sources[valid] = np.where(np.isnan(found), _PRIOR, _CACHED)
        return scores, sources, int(np.count_nonzero(~np.isnan(found)))

    def _fill_misses(self, snap: SnapshotView | None, pending: list[_Pending], deadline: float) -> list[dict[int, str]]:
        """Score every group's missed entities live, in one submission; those not scored get the prior.

        Returns each group's notes by entity id.
        """
        cap = self.settings.server.max_live_pairs_per_request
        pairs: list[tuple[str, str]] = []
        # Per group with misses: its missing slots, distinct missed ids, their entities and where its pairs start.
        plans: list[tuple[_Pending, np.ndarray, np.ndarray, list[Entity], int]] = []
        for p in pending:
            missing = np.isnan(p.scores)
            if not missing.any():
                continue
            miss_ids = np.unique(p.resolved.ids[missing])
            p.result.cache_misses = int(missing.sum())
            entities = [self._entity(snap, p.resolved, int(i)) for i in miss_ids]
            plans.append((p, missing, miss_ids, entities, len(pairs)))
            pairs += [(p.result.normalized_query, e.render()) for e in entities[:cap]]
        if not plans:
            return [{} for _ in pending]
        futures = self._batcher.submit(pairs, deadline)
        # Logged only once admitted: a shed request leaves no trace for the nightly.
        if self._miss_log is not None:
            for p, _, _, entities, _ in plans:
                self._miss_log.record(p.result.normalized_query, entities, p.result.query_cached)
        wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        notes_of: dict[int, dict[int, str]] = {}
        for p, missing, miss_ids, _, start in plans:
            notes_of[id(p)] = notes = {}
            values = np.full(len(miss_ids), self.settings.logic.prior, dtype=np.float32)
            scored = np.zeros(len(miss_ids), dtype=bool)
            mine = futures[start : start + min(cap, len(miss_ids))]
            for k, future in enumerate(mine):
                if not future.done():
                    notes[int(miss_ids[k])] = "not scored within the request deadline"
                elif future.exception() is not None:
                    notes[int(miss_ids[k])] = f"live scoring failed: {future.exception()}"
                else:
                    values[k] = future.result()
                    scored[k] = True
            for k in range(len(mine), len(miss_ids)):
                notes[int(miss_ids[k])] = f"over the live cap of {cap} pairs per request"
            # Map each missing slot to its position in miss_ids.
            slot = np.searchsorted(miss_ids, p.resolved.ids[missing])
            p.scores[missing] = values[slot]
            p.sources[missing] = np.where(scored[slot], _LIVE, _PRIOR)
            p.result.live_scored_pairs = int(scored.sum())
            p.result.prior_pairs = len(miss_ids) - p.result.live_scored_pairs
        return [notes_of.get(id(p), {}) for p in pending]

    @staticmethod
    def _entity(snap: SnapshotView | None, resolved: _Resolved, entity_id: int) -> Entity:
        if snap is not None and entity_id < snap.entity_count:
            return snap.entity(entity_id)
        return resolved.local_entities[entity_id - (snap.entity_count if snap is not None else 0)]

    @staticmethod
    def _statuses(resolved: _Resolved, sources: np.ndarray, aggregate: Aggregate) -> np.ndarray:
        """Status code per item (index into _STATUSES); a more severe status overrides a milder one."""
        codes = np.full(len(resolved.known), _OK, dtype=np.int8)
        codes[(sources == _PRIOR).any(axis=1)] = _DEGRADED
        codes[aggregate.empty] = _EMPTY
        codes[~resolved.known & ~resolved.inline] = _UNKNOWN
        for code, count in zip(*np.unique(codes, return_counts=True), strict=True):
            metrics.ITEMS.labels(_STATUSES[code][0].value).inc(int(count))
        return codes

    def _results(
        self, snap: SnapshotView | None, p: _Pending, aggregate: Aggregate, similarity: _Similarity, notes: dict[int, str]
    ) -> list[ItemResult]:
        resolved, scores, sources, result, items, explain = p.resolved, p.scores, p.sources, p.result, p.items, p.explain
        code_array = self._statuses(resolved, sources, aggregate)
        weight = result.similarity_weight
        blended = (1.0 - weight) * aggregate.scores + weight * similarity.values
        blended = np.where(similarity.unscored, aggregate.scores, blended)
        excluded = _excluded(result.normalized_query, resolved.titles, result.exclusion_penalty)
        if any(excluded):
            blended = blended * np.where([bool(term) for term in excluded], 1.0 - result.exclusion_penalty, 1.0)
        # Not judged: below any real match, so a client sorting by score never prefers it.
        unjudged = np.isin(code_array, (_UNKNOWN, _EMPTY))
        # Degraded so far only by entities at the prior (_statuses); the similarity may degrade more below.
        had_prior = (code_array == _DEGRADED).tolist()
        code_array[similarity.unscored & (code_array == _OK)] = _DEGRADED
        item_scores = np.where(unjudged, self.settings.logic.unjudged_score, blended).tolist()
        entity_scores, similarity_list = aggregate.scores.tolist(), similarity.values.tolist()
        unscored = similarity.unscored.tolist()
        codes = code_array.tolist()
        coverage, compatibility = aggregate.coverage.tolist(), aggregate.compatibility.tolist()
        unknown_message = "item id not in the serving snapshot" if snap is not None else "no snapshot is being served"
        late_message = "entities not extracted within the request deadline: not judged"
        if explain:  # plain lists: indexing numpy scalars one by one is slow
            assert aggregate.lift is not None and aggregate.breaker is not None and aggregate.cover is not None, (
                "explained as asked"
            )
            ids, counts = resolved.ids.tolist(), resolved.counts.tolist()
            score_rows, source_rows = scores.tolist(), sources.tolist()
            lift_rows, breakers, covers = aggregate.lift.tolist(), aggregate.breaker.tolist(), aggregate.cover.tolist()
            weight_rows = self._type_weights(snap, resolved).tolist()
            band = self.settings.logic.neutral_band
        out = []
        for i, request in enumerate(items):
            status, message = _STATUSES[codes[i]]
            if unscored[i] and codes[i] == _DEGRADED:
                message = f"{message}; {_NO_SIMILARITY}" if had_prior[i] else _NO_SIMILARITY
            entities = None
            if explain:
                entities = [
                    EntityScore(
                        entity=self._entity(snap, resolved, ids[i][j]),
                        score=score_rows[i][j],
                        source=_SOURCE_OF_CODE[source_rows[i][j]],
                        lift=lift_rows[i][j],
                        breaks_match=breakers[i] == j,
                        role=_role(score_rows[i][j], band),
                        covers=covers[i] == j,
                        weight=weight_rows[i][j],
                        note=notes.get(ids[i][j], ""),
                        reason=p.reasons.get(ids[i][j], ""),
                    )
                    for j in range(counts[i])
                ]
            out.append(
                ItemResult(
                    request.item_id,
                    item_scores[i],
                    status,
                    unknown_message if codes[i] == _UNKNOWN else late_message if i in resolved.unextracted else message,
                    resolved.titles[i],
                    entities,
                    coverage[i],
                    compatibility[i],
                    entity_scores[i],
                    similarity_list[i],
                    excluded[i],
                )
            )
        return out


def _vocabulary(snap: SnapshotView | None) -> tuple[str, str]:
    """The key and vocabulary JSON live extraction uses for `snap`, so it matches the nightly one."""
    return (snap.snapshot_id, snap.vocabulary_json) if snap is not None else ("", "")


def _excluded(normalized_query: str, titles: Sequence[str], penalty: float) -> list[str]:
    """Per item, the term of the query's exclusions its title names ("" for none; all "" when the query
    excludes nothing or the penalty is 0)."""
    terms = excluded_terms(normalized_query) if penalty else ()
    return [violated_exclusion(terms, title) if terms else "" for title in titles]


def _role(score: float, band: float) -> Role:
    if score > NEUTRAL + band:
        return Role.MATCHES
    if score < NEUTRAL - band:
        return Role.CONTRADICTS
    return Role.NEUTRAL
