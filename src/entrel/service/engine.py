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
answer is what scoring it and then overriding would give.

A call is a batch of groups (ScoreItems is a batch of one): every group's
items are stacked into one padded matrix, so the lookup, the aggregation,
the statuses and the answer's columns are one vectorised pass per call,
not per group or per item; one snapshot, one row read per distinct query,
one live submission for all misses. Rows are independent, so a group's
answer is exactly what ScoreItems gives it alone. Per-item objects
(:class:`~entrel.service.answers.ItemResult`) are built only when asked for; the gRPC layer
encodes the columns directly, and explanations (per entity) are built
for the groups that ask for them.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from entrel.cache import SnapshotView
from entrel.cache.misslog import MissLogWriter
from entrel.catalog import CatalogItem, Entity, EntityType, item_text
from entrel.config import Settings
from entrel.logic import NEUTRAL, Aggregate, Aggregator
from entrel.logic.exclusion import entity_text, excluded_terms, violated_exclusion
from entrel.overrides import OverrideTable, QueryOverrides
from entrel.scoring import TextEncoder, bag_vectors, similarities
from entrel.scoring.similarity import clip_similarities, cosines
from entrel.service import metrics
from entrel.service.answers import (
    STATUS_OF_CODE,
    EntityScore,
    ItemColumns,
    Role,
    ScoreResult,
    Source,
)
from entrel.service.batcher import MicroBatcher, Overloaded
from entrel.service.extraction import InlineExtraction
from entrel.service.limits import inline_problem
from entrel.service.requests import Group, InvalidRequest, ItemRefs, ItemRequest, ValidQuery
from entrel.service.slots import Slots
from entrel.text import normalize

__all__ = ["RelevanceEngine", "SnapshotSource"]

log = logging.getLogger(__name__)


# Codes of the per-slot source matrix.
_PAD, _CACHED, _LIVE, _PRIOR, _OVERRIDE = 0, 1, 2, 3, 4
_SOURCE_OF_CODE = {_CACHED: Source.CACHED, _LIVE: Source.LIVE, _PRIOR: Source.PRIOR, _OVERRIDE: Source.OVERRIDE}
# Codes of entity types in the per-slot type matrix (-1 in padding).
_TYPES = tuple(EntityType)
_TYPE_CODE = {t: np.int8(i) for i, t in enumerate(_TYPES)}
# Item status codes, indices into STATUS_OF_CODE (by severity).
_OK, _UNKNOWN, _EMPTY, _DEGRADED = range(4)
_NO_SIMILARITY = "similarity not computed within the request deadline: scored by its entities alone"
_LATE = "entities not extracted within the request deadline: not judged"
# Message codes past the status codes (which index their own status's message).
_MSG_NO_SIMILARITY, _MSG_PRIOR_NO_SIMILARITY, _MSG_LATE = 4, 5, 6
# Inline item texts encoded per step of the similarity term, the deadline checked between steps.
_ENCODE_CHUNK = 8
# The message of each status code (UNKNOWN_ITEM's depends on whether a snapshot is served).
_STATUS_MESSAGES = ("", "", "no entities extracted: not judged", "some entities got the prior score")
assert len(_STATUS_MESSAGES) == len(STATUS_OF_CODE), "one message per status code"
# Each status's item counter, looked up once (a labels() call per request costs more than the increment).
_ITEMS_OF_CODE = tuple(metrics.ITEMS.labels(status.value) for status in STATUS_OF_CODE)


class SnapshotSource(Protocol):
    """Hands out the snapshot to use for one request (see SnapshotWatcher)."""

    def current(self) -> SnapshotView | None: ...


@dataclass
class _Similarity:
    """Per item: cosine with the query, and whether it could not be computed in time (inline items)."""

    values: np.ndarray
    unscored: np.ndarray


@dataclass
class _Resolved:
    """Items as a padded entity-id matrix; ids >= len(snapshot entities) are request-local.

    One for a whole call (every group's items stacked, padded to the widest);
    :meth:`view` gives a group's rows, sharing the arrays.
    """

    ids: np.ndarray
    counts: np.ndarray
    # Row of each item in the snapshot's tables, -1 when not there.
    rows: np.ndarray
    # Found in the snapshot / sent inline.
    known: np.ndarray
    inline: np.ndarray
    local_entities: list[Entity]
    # "" where not read (only the groups that explain or exclude read titles).
    titles: list[str]
    # Inline items whose extraction did not start before the deadline.
    unextracted: np.ndarray

    def view(self, lo: int, hi: int) -> _Resolved:
        """Rows lo:hi (one group), as views of these arrays."""
        return _Resolved(
            self.ids[lo:hi],
            self.counts[lo:hi],
            self.rows[lo:hi],
            self.known[lo:hi],
            self.inline[lo:hi],
            self.local_entities,
            self.titles[lo:hi],
            self.unextracted[lo:hi],
        )


@dataclass
class _Pending:
    """One group between its lookup and its answer: rows lo:hi of the call's matrices."""

    items: ItemRefs
    explain: bool
    lo: int
    hi: int
    result: ScoreResult
    # Whether the query excludes something (its items' titles or entity texts are read).
    excludes: bool
    # Override reasons by entity id.
    reasons: dict[int, str]


class _RowTable(threading.local):
    """Entity id -> score of one query's cached row at a time, one table per thread, NaN wherever no row is being read.

    Looking a group's slots up in a row is then a scatter of the row's part
    below the largest id asked for and a gather of the slots, a few
    nanoseconds a slot (a binary search was tens). The table grows to the
    largest id asked for (the entities of the items requested, not the
    snapshot's) and is kept, so a call allocates nothing for it.
    """

    def __init__(self) -> None:
        self.table = np.full(1, np.nan, dtype=np.float32)

    def scores(self, row: tuple[np.ndarray, np.ndarray], ids: np.ndarray, n_ids: int) -> np.ndarray:
        """The score `row` holds for each of `ids` (< `n_ids`; -1, padding, reads the last entry): NaN where it holds none."""
        entity_ids, values = row
        asked = int(np.searchsorted(entity_ids, n_ids))  # a row's ids ascend: those past n_ids are never read
        entity_ids, values = entity_ids[:asked], values[:asked]
        if len(self.table) < n_ids + 1:  # the last entry, never a row's, stays NaN for padding
            self.table = np.full(n_ids + 1, np.nan, dtype=np.float32)
        table = self.table
        table[entity_ids] = values
        try:
            return table[ids]
        finally:
            table[entity_ids] = np.nan


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
        # Whether any type weighs other than 1: if none does, the aggregation takes no per-slot weights.
        self._weighs_types = bool((self._weight_of_type != 1.0).any())
        if extraction is None:
            extraction = InlineExtraction(
                settings.extraction,
                settings.server.inline_extraction_workers,
                settings.server.inline_extraction_niceness,
            )
            # Its worker processes end with the engine, closed or not.
            weakref.finalize(self, extraction.close)
        self._extraction = extraction
        self._inline_slots = Slots(settings.server.max_inline_requests)
        self._row_table = _RowTable()

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
        self,
        query: str | ValidQuery,
        items: Sequence[ItemRequest] | ItemRefs,
        explain: bool = False,
        deadline: float | None = None,
    ) -> ScoreResult:
        """Score `items` for `query` (checked here unless it comes from `validate`); `deadline` is on the monotonic clock."""
        started = time.perf_counter()
        valid = query if isinstance(query, ValidQuery) else self.validate(query, len(items))
        return self._run([Group(valid, ItemRefs.of(items), explain)], deadline, started, batch=False)[0]

    def score_batch(self, groups: Sequence[Group], deadline: float | None = None) -> list[ScoreResult]:
        """Score every group as :meth:`score` would, in one pass over all of their items.

        A group that breaks a limit refuses the whole batch (InvalidRequest
        naming `groups[i]`), so a caller never gets half an answer.
        """
        started = time.perf_counter()
        valid = self.validate_batch([(g.query, len(g.items)) for g in groups])
        refs = [ItemRefs.of(g.items) for g in groups]
        return self._run(
            [Group(v, r, g.explain) for v, r, g in zip(valid, refs, groups, strict=True)], deadline, started, batch=True
        )

    def _run(self, groups: list[Group], deadline: float | None, started: float, batch: bool) -> list[ScoreResult]:
        """Score validated groups, within one inline slot when any of them sends inline items."""
        if deadline is None:
            deadline = time.monotonic() + self.settings.server.default_deadline_ms / 1000
        if not any(ItemRefs.of(g.items).inline for g in groups):
            return self._score(groups, deadline, started)
        # Inline items cost extraction and live scoring: a few such requests at
        # a time, so they never hold every worker thread from cached requests.
        # The slot is taken before the items are checked: under a flood, a refused
        # request costs no reading (normalising a long title is the dearest check).
        taken = self._inline_slots.take()
        if taken is None:
            raise self._inline_busy()
        # Encoding inline texts for the similarity term is the costliest step left: only a
        # request alone with its inline items does it; under an inline flood they are scored
        # by their entities alone (DEGRADED, said in the message), which keeps deadlines.
        encode_inline = taken == 1
        try:
            for g, group in enumerate(groups):
                if problem := inline_problem(ItemRefs.of(group.items).inline.items(), self.settings.server):
                    raise InvalidRequest(f"groups[{g}]: {problem}" if batch else problem)
            # Their extraction, live scoring and encoding keep the server busiest: keep a
            # fifth of their time back, so a scheduling stall cannot push the answer late.
            now = time.monotonic()
            return self._score(groups, now + 0.8 * (deadline - now), started, encode_inline)
        finally:
            self._inline_slots.give_back()

    def refuse_inline_when_busy(self) -> None:
        """Raise Overloaded when every inline slot is taken: a transport calls it before it builds a request's
        inline items, so under an inline flood a refusal costs no copying. A hint only (the slot is taken later)."""
        if self._inline_slots.full:
            raise self._inline_busy()

    def _inline_busy(self) -> Overloaded:
        limit = self._inline_slots.limit
        return Overloaded(f"{limit} requests with inline items are in flight (server.max_inline_requests); retry")

    def _score(self, groups: list[Group], deadline: float, started: float, encode_inline: bool = True) -> list[ScoreResult]:
        snap = self._snapshot.current()
        overrides = self.overrides.current() if self.overrides is not None else None
        penalty = self.settings.exclusion.penalty
        # Distinct queries of the call, each read once; the query index of every group.
        queries: dict[str, int] = {}
        pending: list[_Pending] = []
        lo = 0
        for group in groups:
            assert isinstance(group.query, ValidQuery), "validated by score or score_batch"
            normalized = group.query.normalized
            queries.setdefault(normalized, len(queries))
            items = ItemRefs.of(group.items)
            result = ScoreResult(
                snapshot_id=snap.snapshot_id if snap else "",
                model_fingerprint=self.fingerprint,
                tnorm=self.aggregator.tnorm_name,
                normalized_query=normalized,
                query_cached=False,
                exclusion_penalty=penalty,
            )
            excludes = bool(penalty and excluded_terms(normalized))
            pending.append(_Pending(items, group.explain, lo, lo + len(items), result, excludes, {}))
            lo += len(items)
        resolved = self._resolve(snap, pending, deadline)
        rows = [snap.row(q) if snap is not None else None for q in queries]
        scores, sources, found = self._lookup(rows, pending, [queries[p.result.normalized_query] for p in pending], resolved.ids)
        hits = _per_group(found, pending)
        for p, n in zip(pending, hits, strict=True):
            p.result.query_cached = rows[queries[p.result.normalized_query]] is not None
            p.result.cache_hits = n
            chosen = overrides.for_query(p.result.normalized_query) if overrides is not None else None
            if chosen is not None:
                p.reasons = self._apply_overrides(
                    chosen, snap, resolved.view(p.lo, p.hi), scores[p.lo : p.hi], sources[p.lo : p.hi], p.explain
                )
        looked_up = time.perf_counter()
        all_notes = self._fill_misses(snap, resolved, scores, sources, pending, deadline)
        lived = time.perf_counter()
        explain: bool | np.ndarray = False
        if any(p.explain for p in pending):
            explain = np.repeat([p.explain for p in pending], [p.hi - p.lo for p in pending])
        weights = self._type_weights(snap, resolved) if self._weighs_types else None
        aggregate = self.aggregator(scores, resolved.counts, weights, explain=explain)
        # Inline items' similarity starts no chunk in the last half of the time left: that is for the answer.
        now = time.monotonic()
        stop_encoding = deadline - 0.5 * max(0.0, deadline - now)
        similarity = self._similarity(snap, pending, resolved, stop_encoding, encode_inline)
        aggregated = time.perf_counter()
        self._results(snap, pending, resolved, scores, sources, aggregate, similarity, all_notes)
        done = time.perf_counter()
        timings = {
            "lookup": (looked_up - started) * 1000,
            "live": (lived - looked_up) * 1000,
            "aggregate": (aggregated - lived) * 1000,
            "total": (done - started) * 1000,
        }
        for p in pending:
            p.result.timings_ms = dict(timings)
        metrics.CACHE_HITS.inc(sum(p.result.cache_hits for p in pending))
        metrics.CACHE_MISSES.inc(sum(p.result.cache_misses for p in pending))
        metrics.PRIOR_PAIRS.inc(sum(p.result.prior_pairs for p in pending))
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
        reasons: dict[int, str] = {}
        if chosen.types:
            slot_types = self._slot_types(snap, resolved)
            for type_, override in chosen.types.items():
                hit = slot_types == _TYPE_CODE[type_]  # padding's type is -1
                scores[hit] = NEUTRAL
                sources[hit] = _OVERRIDE
                if explain:
                    reasons.update(dict.fromkeys(np.unique(ids[hit]).tolist(), override.reason))
        known, values, found = chosen.resolve(snap)
        # Entities of inline items the snapshot lacks have ids past the snapshot's, so appending keeps the order.
        first_local = snap.entity_count if snap is not None else 0
        local = [(first_local + k, o) for k, e in enumerate(resolved.local_entities) if (o := chosen.entity(e)) is not None]
        if local:
            known = np.concatenate([known, np.array([i for i, _ in local], dtype=known.dtype)])
            values = np.concatenate([values, np.array([o.score for _, o in local], dtype=np.float32)])
            found = (*found, *(o for _, o in local))
        if known.size:
            pos = np.minimum(np.searchsorted(known, ids), known.size - 1)
            hit = known[pos] == ids  # padding (-1) is never a known id
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
            # Padding (-1) indexes the trailing -1.
            base = np.array([*types, -1], dtype=np.int8)
            self._entity_types = {key: base}  # keep only the current snapshot's
        if not resolved.local_entities:
            return base[resolved.ids]
        local = np.array([_TYPE_CODE[e.type] for e in resolved.local_entities], dtype=np.int8)
        return np.concatenate([base[:-1], local, base[-1:]])[resolved.ids]

    def _type_weights(self, snap: SnapshotView | None, resolved: _Resolved) -> np.ndarray:
        """The type weight of every slot of the padded entity matrix (1 in padding)."""
        return self._weight_of_type[self._slot_types(snap, resolved)]

    def _similarity(
        self, snap: SnapshotView | None, pending: list[_Pending], resolved: _Resolved, deadline: float, encode_inline: bool
    ) -> _Similarity:
        """Cosine of each group's query with each of its items' vectors (0 for unknown items); sets the responses' weight.

        The term applies only with a snapshot that holds item vectors, so
        every item of a response is scored alike; inline items are encoded
        live, a chunk at a time while the deadline allows: those left are
        scored by their entities alone (and say so).
        """
        n = len(resolved.known)
        sims = _Similarity(np.zeros(n, dtype=np.float32), np.zeros(n, dtype=bool))
        if self._encoder is None or snap is None:
            return sims
        known = np.flatnonzero(resolved.known)
        if snap.item_vectors(known[:0]) is None:  # the snapshot holds none (None for any positions)
            return sims
        # Each group's known items are a run of `known` (rows ascend).
        bounds = np.searchsorted(known, [[p.lo, p.hi] for p in pending]).tolist()
        # Per distinct query: its vector (None when the encoder stayed busy), and whether the snapshot held it.
        query_vectors: dict[str, tuple[np.ndarray | None, bool]] = {}
        for p, (start, stop) in zip(pending, bounds, strict=True):
            result, normalized = p.result, p.result.normalized_query
            if normalized not in query_vectors:
                cached = snap.query_vector(normalized)
                live = self._encoder.encode_query(normalized, deadline) if cached is None else None
                query_vectors[normalized] = (cached if cached is not None else live, cached is not None)
            query, result.query_vector_cached = query_vectors[normalized]
            group = slice(p.lo, p.hi)
            if query is None:  # the encoder stayed busy: every item by its entities alone, flagged
                sims.unscored[group] = resolved.known[group] | resolved.inline[group]
                continue
            if stop > start:  # cosines per group; clipped once for the call below
                # Gathered per group, not for the whole call: a group's vectors stay in the CPU's cache
                # for its cosines (a batch's 1,000 would not: measured 0.58 vs 0.95 ms cold).
                vectors = snap.item_vectors(resolved.rows[known[start:stop]])
                assert vectors is not None, "the snapshot holds item vectors"
                sims.values[known[start:stop]] = cosines(query, vectors)
            if p.items.inline:
                self._encode_inline(self._inline_texts(snap, resolved, p), _bags(snap), query, sims, deadline, encode_inline)
            result.similarity_weight = self.settings.similarity.weight
        clip_similarities(sims.values, out=sims.values)  # inline items' are clipped already: clipping again changes nothing
        return sims

    def _inline_texts(self, snap: SnapshotView | None, resolved: _Resolved, p: _Pending) -> list[tuple[int, list[str]]]:
        """Each inline item's row and the texts its vector is made of, as the served snapshot's item vectors
        were made (its `similarity_source`): its text, or its entities' texts."""
        rows = [p.lo + i for i in sorted(p.items.inline)]
        if not _bags(snap):
            return [(row, [item_text(p.items.inline[row - p.lo])]) for row in rows]
        return [
            (row, [self._entity(snap, resolved, int(i)).text for i in resolved.ids[row, : resolved.counts[row]]]) for row in rows
        ]

    def _encode_inline(
        self,
        inline: list[tuple[int, list[str]]],
        bags: bool,
        query: np.ndarray,
        sims: _Similarity,
        deadline: float,
        encode_inline: bool,
    ) -> None:
        """The similarity of a group's inline items, encoded a chunk at a time while the deadline allows."""
        if not encode_inline:
            sims.unscored[[row for row, _ in inline]] = True
            inline = []
        last_chunk_s = 0.0  # a chunk starts only if one as long as the last still ends in time
        for start in range(0, len(inline), _ENCODE_CHUNK):
            chunk = inline[start : start + _ENCODE_CHUNK]
            began = time.monotonic()
            vectors = None
            if began + last_chunk_s < deadline:
                vectors = self._inline_vectors([texts for _, texts in chunk], bags, deadline - last_chunk_s, len(query))
            if vectors is None:
                sims.unscored[[row for row, _ in inline[start:]]] = True
                break
            sims.values[[row for row, _ in chunk]] = similarities(query, vectors)
            last_chunk_s = time.monotonic() - began

    def _inline_vectors(self, per_item: list[list[str]], bags: bool, until: float, dimension: int) -> np.ndarray | None:
        """Vectors of inline items: their text's, or the bag of their entity texts' (`bags`; of `dimension`);
        None if the encoder stayed busy past `until`."""
        encoder = self._encoder
        assert encoder is not None, "called with an encoder"
        if not bags:
            return encoder.encode_by([texts[0] for texts in per_item], until)
        return bag_vectors(per_item, functools.partial(encoder.encode_by, until=until), dimension)

    def _extract_inline(self, snap: SnapshotView | None, items: list[CatalogItem], deadline: float) -> list[list[Entity] | None]:
        """Entities of each inline item (in worker processes), None for those not extracted in time.

        A request waits for its items until the middle of its time left,
        keeping the rest for live scoring and the answer, and degrades only
        its own items.
        """
        until = time.monotonic() + (deadline - time.monotonic()) / 2
        return self._extraction.extract(*_vocabulary(snap), items, until)

    def _resolve(self, snap: SnapshotView | None, pending: list[_Pending], deadline: float) -> _Resolved:
        """Every group's items stacked: entity ids (snapshot or freshly extracted), and the titles of the groups
        that explain or exclude (explanations show them; exclusions are tested against them)."""
        item_ids = list(itertools.chain.from_iterable(p.items.ids for p in pending))
        inline_items = {p.lo + i: item for p in pending for i, item in p.items.inline.items()}
        n = len(item_ids)
        if snap is not None:
            rows = snap.item_positions(item_ids)
            # Inline items are extracted afresh even when their id is in the snapshot.
            if inline_items:
                rows[list(inline_items)] = -1
            known = rows >= 0
            ids, counts = snap.item_entity_ids(rows)
            n_snapshot_entities = snap.entity_count
        else:
            rows = np.full(n, -1, dtype=np.int64)
            known = np.zeros(n, dtype=bool)
            ids = np.full((n, 0), -1, dtype=np.int32)
            counts = np.zeros(n, dtype=np.int32)
            n_snapshot_entities = 0
        inline_rows = sorted(inline_items)
        local: list[Entity] = []
        unextracted = np.zeros(n, dtype=bool)
        if inline_rows:
            maybe = self._extract_inline(snap, [inline_items[row] for row in inline_rows], deadline)
            unextracted[[row for row, e in zip(inline_rows, maybe, strict=True) if e is None]] = True
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
        for p in pending:
            if p.explain or p.excludes:
                if snap is not None:
                    titles[p.lo : p.hi] = snap.titles(item_ids[p.lo : p.hi])
                for i, item in p.items.inline.items():
                    titles[p.lo + i] = item.title
        inline = np.zeros(n, dtype=bool)
        inline[inline_rows] = True
        return _Resolved(ids, counts, rows, known, inline, local, titles, unextracted)

    def _lookup(
        self, rows: list[tuple[np.ndarray, np.ndarray] | None], pending: list[_Pending], query_of: list[int], ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores (NEUTRAL where padded, NaN where missed) and source codes of every slot, and the hits per item row.

        Group g's rows read the cached row of query `query_of[g]`, through
        this thread's row table: one scatter of the row and one gather of
        the group's slots, no search.
        """
        found = np.full(ids.shape, np.nan, dtype=np.float32)
        n_ids = int(ids.max(initial=-1)) + 1
        for p, q in zip(pending, query_of, strict=True):
            row = rows[q]
            if row is not None and row[0].size and p.hi > p.lo:
                found[p.lo : p.hi] = self._row_table.scores(row, ids[p.lo : p.hi], n_ids)
        valid = ids >= 0
        scores = np.where(valid, found, NEUTRAL)
        sources = np.where(np.isnan(found), _PRIOR, _CACHED).astype(np.int8)
        sources[~valid] = _PAD
        return scores, sources, np.count_nonzero(sources == _CACHED, axis=1)

    def _fill_misses(
        self,
        snap: SnapshotView | None,
        resolved: _Resolved,
        scores: np.ndarray,
        sources: np.ndarray,
        pending: list[_Pending],
        deadline: float,
    ) -> list[dict[int, str]]:
        """Score every group's missed entities live, in one submission; those not scored get the prior.

        Returns each group's notes by entity id.
        """
        missed_rows = np.isnan(scores).any(axis=1)
        if not missed_rows.any():
            return [{} for _ in pending]
        cap = self.settings.server.max_live_pairs_per_request
        pairs: list[tuple[str, str]] = []
        # Per group with misses: its missing slots, distinct missed ids, their entities and where its pairs start.
        plans: list[tuple[_Pending, np.ndarray, np.ndarray, list[Entity], int]] = []
        for p, n_missed in zip(pending, _per_group(missed_rows, pending), strict=True):
            if not n_missed:
                continue
            missing = np.isnan(scores[p.lo : p.hi])
            miss_ids = np.unique(resolved.ids[p.lo : p.hi][missing])
            p.result.cache_misses = int(missing.sum())
            entities = [self._entity(snap, resolved, int(i)) for i in miss_ids]
            plans.append((p, missing, miss_ids, entities, len(pairs)))
            pairs += [(p.result.normalized_query, e.render()) for e in entities[:cap]]
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
            slot = np.searchsorted(miss_ids, resolved.ids[p.lo : p.hi][missing])
            scores[p.lo : p.hi][missing] = values[slot]
            sources[p.lo : p.hi][missing] = np.where(scored[slot], _LIVE, _PRIOR)
            p.result.live_scored_pairs = int(scored.sum())
            p.result.prior_pairs = len(miss_ids) - p.result.live_scored_pairs
        return [notes_of.get(id(p), {}) for p in pending]

    @staticmethod
    def _entity(snap: SnapshotView | None, resolved: _Resolved, entity_id: int) -> Entity:
        if snap is not None and entity_id < snap.entity_count:
            return snap.entity(entity_id)
        return resolved.local_entities[entity_id - (snap.entity_count if snap is not None else 0)]

    def _results(
        self,
        snap: SnapshotView | None,
        pending: list[_Pending],
        resolved: _Resolved,
        scores: np.ndarray,
        sources: np.ndarray,
        aggregate: Aggregate,
        similarity: _Similarity,
        all_notes: list[dict[int, str]],
    ) -> None:
        """Every group's answer columns, computed for all rows at once; explanations for the groups that asked."""
        # Status code per item; a more severe status overrides a milder one.
        codes = np.full(len(resolved.known), _OK, dtype=np.int8)
        codes[(sources == _PRIOR).any(axis=1)] = _DEGRADED
        codes[aggregate.empty] = _EMPTY
        codes[~resolved.known & ~resolved.inline] = _UNKNOWN
        for code, count in enumerate(np.bincount(codes, minlength=len(STATUS_OF_CODE)).tolist()):
            if count:
                _ITEMS_OF_CODE[code].inc(count)
        # Not judged: below any real match, so a client sorting by score never prefers it.
        unjudged = (codes == _UNKNOWN) | (codes == _EMPTY)
        # Degraded so far only by entities at the prior; the similarity may degrade more below.
        had_prior = codes == _DEGRADED
        no_similarity = similarity.unscored & ((codes == _OK) | had_prior)
        codes[no_similarity] = _DEGRADED
        messages = codes.astype(np.int8)
        messages[no_similarity] = np.where(had_prior[no_similarity], _MSG_PRIOR_NO_SIMILARITY, _MSG_NO_SIMILARITY)
        messages[resolved.unextracted & (codes != _UNKNOWN)] = _MSG_LATE
        unknown_message = "item id not in the serving snapshot" if snap is not None else "no snapshot is being served"
        texts = (
            "",
            unknown_message,
            _STATUS_MESSAGES[_EMPTY],
            _STATUS_MESSAGES[_DEGRADED],
            _NO_SIMILARITY,
            f"{_STATUS_MESSAGES[_DEGRADED]}; {_NO_SIMILARITY}",
            _LATE,
        )
        unjudged_score = self.settings.logic.unjudged_score
        blended = _blended(pending, aggregate.scores, similarity)
        scores_of_rows = np.where(unjudged, unjudged_score, blended)
        for p, notes in zip(pending, all_notes, strict=True):
            result, rows = p.result, slice(p.lo, p.hi)
            item_scores, excluded = scores_of_rows[rows], None
            if p.excludes:
                excluded = _excluded(
                    result.normalized_query, self._exclusion_texts(snap, resolved, rows), result.exclusion_penalty
                )
                if any(excluded):
                    penalised = blended[rows] * np.where([bool(term) for term in excluded], 1.0 - result.exclusion_penalty, 1.0)
                    item_scores = np.where(unjudged[rows], unjudged_score, penalised)
            result.columns = ItemColumns(
                p.items.ids,
                item_scores,
                codes[rows],
                messages[rows],
                texts,
                aggregate.coverage[rows],
                aggregate.compatibility[rows],
                aggregate.scores[rows],
                similarity.values[rows],
                resolved.titles[rows] if p.explain or p.excludes else None,
                excluded,
            )
            if p.explain:
                result.explained = self._explanations(
                    snap, resolved.view(p.lo, p.hi), scores[rows], sources[rows], aggregate, rows, notes, p.reasons
                )

    def _exclusion_texts(self, snap: SnapshotView | None, resolved: _Resolved, rows: slice) -> Sequence[str]:
        """What each item's exclusions are read in (`exclusion.reads`): its title, or its entity texts."""
        if self.settings.exclusion.reads != "entities":
            return resolved.titles[rows]
        ids, counts = resolved.ids[rows].tolist(), resolved.counts[rows].tolist()
        return [entity_text(self._entity(snap, resolved, i).text for i in row[:n]) for row, n in zip(ids, counts, strict=True)]

    def _explanations(
        self,
        snap: SnapshotView | None,
        resolved: _Resolved,
        scores: np.ndarray,
        sources: np.ndarray,
        aggregate: Aggregate,
        rows: slice,
        notes: dict[int, str],
        reasons: dict[int, str],
    ) -> list[list[EntityScore]]:
        """Each item's entities with their scores, sources, roles and what they did to the item."""
        assert aggregate.lift is not None and aggregate.breaker is not None and aggregate.cover is not None, "explained as asked"
        # Plain lists: indexing numpy scalars one by one is slow.
        ids, counts = resolved.ids.tolist(), resolved.counts.tolist()
        score_rows, source_rows = scores.tolist(), sources.tolist()
        lift_rows, breakers, covers = (
            aggregate.lift[rows].tolist(),
            aggregate.breaker[rows].tolist(),
            aggregate.cover[rows].tolist(),
        )
        weight_rows = self._type_weights(snap, resolved).tolist()
        band = self.settings.logic.neutral_band
        return [
            [
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
                    reason=reasons.get(ids[i][j], ""),
                )
                for j in range(counts[i])
            ]
            for i in range(len(counts))
        ]


def _blended(pending: Sequence[_Pending], entity_scores: np.ndarray, similarity: _Similarity) -> np.ndarray:
    """Every row's (1 - w) * entity score + w * similarity, w its group's similarity weight (the entity score
    alone where the similarity was not computed): float32 throughout, as each group's own scalar weight gives."""
    sizes = [p.hi - p.lo for p in pending]
    weights = [p.result.similarity_weight for p in pending]
    keep = np.repeat(np.array([1.0 - w for w in weights], dtype=np.float32), sizes)
    weight = np.repeat(np.array(weights, dtype=np.float32), sizes)
    return np.where(similarity.unscored, entity_scores, keep * entity_scores + weight * similarity.values)


def _per_group(per_row: np.ndarray, pending: Sequence[_Pending]) -> list[int]:
    """Sums of `per_row` over each group's rows (empty groups included)."""
    total = np.concatenate([[0], np.cumsum(per_row, dtype=np.int64)])
    return (total[[p.hi for p in pending]] - total[[p.lo for p in pending]]).tolist()


def _vocabulary(snap: SnapshotView | None) -> tuple[str, str]:
    """The key and vocabulary JSON live extraction uses for `snap`, so it matches the nightly one."""
    return (snap.snapshot_id, snap.vocabulary_json) if snap is not None else ("", "")


def _bags(snap: SnapshotView | None) -> bool:
    """Whether the served snapshot's item vectors are bags of entity vectors (inline items then get bags too)."""
    return snap is not None and snap.similarity_source == "entities"


def _excluded(normalized_query: str, texts: Sequence[str], penalty: float) -> list[str]:
    """Per item, the term of the query's exclusions its text (title or entity texts) names ("" for none;
    all "" when the query excludes nothing or the penalty is 0)."""
    terms = excluded_terms(normalized_query) if penalty else ()
    return [violated_exclusion(terms, text) if terms else "" for text in texts]


def _role(score: float, band: float) -> Role:
    if score > NEUTRAL + band:
        return Role.MATCHES
    if score < NEUTRAL - band:
        return Role.CONTRADICTS
    return Role.NEUTRAL
