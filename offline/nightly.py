"""The nightly job: refresh the (query, entity) score cache.

extract entities -> mine frequent queries (+ the server's logged misses)
-> candidate entities per query -> score in batches -> item and query vectors
for the similarity term (unless its weight is 0) -> write a NEW snapshot
-> verify it -> promote it atomically -> prune old ones -> JSON report (with
the operators' overrides in force and how far each is from tonight's scores).

A failure at any step leaves the promoted snapshot, and so the server,
untouched; the half-written staging folder is removed by the next run.

    entrel [--config entrel.toml] [--set nightly.top_k_queries=500] nightly
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from entrel.cache import Manifest, SnapshotStore
from entrel.cache.misslog import MissSummary, read_misses
from entrel.catalog import Entity
from entrel.config import Settings
from entrel.errors import EntrelError
from entrel.offline import extract
from entrel.offline.mine_queries import mine_queries
from entrel.offline.retrieval import Bm25Index
from entrel.offline.vectors import catalog_vectors
from entrel.overrides import OverrideDrift, OverrideStore
from entrel.scoring import CrossEncoderScorer, Scorer, TextEncoder

__all__ = ["NightlyError", "NightlyReport", "run"]

log = logging.getLogger(__name__)

# Queries scored per model call: big enough for full batches, small enough
# to stream rows into LMDB as they are done.
_QUERIES_PER_CHUNK = 16
# Miss-log files older than this are no longer read.
_MISS_LOG_DAYS = 7


class NightlyError(EntrelError, RuntimeError):
    """The nightly job cannot run (e.g. another run holds the lock)."""


@dataclass
class NightlyReport:
    snapshot_id: str
    model_fingerprint: str
    counts: dict[str, int]
    queries_mined: int
    traffic_coverage: float
    miss_log_queries: int
    pairs_per_second: float
    snapshot_bytes: int
    snapshot_path: str
    pruned: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    # Item vectors carried from the previous run / encoded this run (offline/vectors.py).
    item_vectors: dict[str, int] = field(default_factory=dict)
    # Overrides in force, each with the model's fresh scores of the pairs it covers (entrel.overrides.drift).
    overrides: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """One nightly run at a time per snapshot folder."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".nightly.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NightlyError(f"another nightly run holds {root / '.nightly.lock'}") from None
        yield


def _candidates(
    settings: Settings, catalog: extract.ExtractedCatalog, entity_ids: dict[Entity, int], queries: list[str], misses: MissSummary
) -> list[np.ndarray]:
    """Entity ids to precompute per query: those of its BM25 top items, plus its logged misses."""
    if settings.nightly.candidates == "all":
        every = np.arange(len(entity_ids), dtype=np.int64)
        base = [every] * len(queries)
    else:
        item_entity_ids = [np.array([entity_ids[e] for e in es], dtype=np.int64) for es in catalog.entities]
        documents = [
            " ".join([item.title, *(e.text for e in es)]) for item, es in zip(catalog.items, catalog.entities, strict=True)
        ]
        tops = Bm25Index(documents).top(queries, settings.nightly.items_per_query)
        base = [
            np.unique(np.concatenate([item_entity_ids[i] for i in top])) if len(top) else np.zeros(0, np.int64) for top in tops
        ]
    out = []
    for query, ids in zip(queries, base, strict=True):
        missed = [entity_ids[e] for e in misses.pairs.get(query, ()) if e in entity_ids]
        out.append(np.union1d(ids, np.array(missed, dtype=np.int64)) if missed else ids)
    return out


def _score_rows(
    scorer: Scorer, entities: list[Entity], queries: list[str], candidates: list[np.ndarray], progress: bool
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    rendered = [e.render() for e in entities]
    bar = tqdm(total=int(sum(len(c) for c in candidates)), desc="precompute", unit="pair", disable=not progress)
    for start in range(0, len(queries), _QUERIES_PER_CHUNK):
        chunk = range(start, min(start + _QUERIES_PER_CHUNK, len(queries)))
        pairs = [(queries[q], rendered[e]) for q in chunk for e in candidates[q]]
        scores = scorer.score(pairs)
        offset = 0
        for q in chunk:
            n = len(candidates[q])
            yield queries[q], candidates[q], scores[offset : offset + n]
            offset += n
        bar.update(len(pairs))
    bar.close()


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def run(settings: Settings, scorer: Scorer | None = None, progress: bool = True) -> NightlyReport:
    """Build, verify and promote a new snapshot; returns what was done."""
    store = SnapshotStore(settings.snapshot_root)
    seconds: dict[str, float] = {}
    vector_counts: dict[str, int] = {}
    with _exclusive(store.root):
        # A killed run's staging folder would otherwise stay until this run's prune.
        if stale := store.remove_staging():
            log.info("stale staging folders removed", extra={"folders": stale})
        clock = time.perf_counter()
        catalog = extract.run(settings, progress=progress)
        misses = (
            read_misses(settings.miss_log_dir, _MISS_LOG_DAYS, settings.nightly.max_miss_queries)
            if settings.nightly.use_miss_log
            else MissSummary()
        )
        mined = mine_queries(settings.nightly, misses)
        queries = [q for q, _ in mined.queries]
        # Entities seen only in misses (inline items) get ids too, so they can be cached.
        table = sorted(set(catalog.entity_table()).union(*misses.pairs.values()))
        entity_ids = {e: i for i, e in enumerate(table)}
        candidates = _candidates(settings, catalog, entity_ids, queries, misses)
        seconds["extract_and_mine"] = time.perf_counter() - clock

        clock = time.perf_counter()
        scorer = scorer if scorer is not None else CrossEncoderScorer(settings.model)
        seconds["load_model"] = time.perf_counter() - clock

        _, in_force = OverrideStore.open(settings.overrides_dir, settings.overrides.map_size_mb).entries()
        drift = OverrideDrift(in_force, table)
        with store.writing(settings.nightly.map_size_mb) as writer:
            clock = time.perf_counter()
            writer.put_meta("vocabulary", catalog.vocabulary.to_json())
            writer.add_entities(table)
            writer.add_items(
                (item.item_id, item.title, [entity_ids[e] for e in es])
                for item, es in zip(catalog.items, catalog.entities, strict=True)
            )
            writer.add_rows(drift.tap(_score_rows(scorer, table, queries, candidates, progress)))
            seconds["score_and_write"] = time.perf_counter() - clock
            if settings.similarity.weight > 0:
                clock = time.perf_counter()
                encoder = TextEncoder(settings.similarity, getattr(scorer, "device", "cpu"))
                encoded = catalog_vectors(
                    encoder,
                    catalog.items,
                    catalog.entities,
                    settings.similarity.source,
                    Path(settings.data_dir) / "vectors",
                    progress,
                )
                vector_counts = {"reused": encoded.reused, "encoded": encoded.encoded}
                writer.add_item_vectors(zip((item.item_id for item in catalog.items), encoded.vectors, strict=True))
                writer.add_query_vectors(zip(queries, encoder.encode(queries), strict=True))
                seconds["vectors"] = time.perf_counter() - clock
            manifest = writer.finish(
                Manifest(
                    snapshot_id=writer.snapshot_id,
                    model_fingerprint=scorer.fingerprint,
                    model_name=settings.model.name_or_path,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    counts={},
                    sources={
                        "catalog": settings.catalog.path,
                        "query_log": settings.nightly.query_log,
                        "similarity_encoder": settings.similarity.encoder if settings.similarity.weight > 0 else "",
                        "similarity_source": settings.similarity.source if settings.similarity.weight > 0 else "",
                    },
                    build_seconds=round(sum(seconds.values()), 2),
                )
            )
        snapshot_id = writer.snapshot_id
        path = store.path_of(snapshot_id)

        clock = time.perf_counter()
        store.open(snapshot_id, verify=True)
        store.promote(snapshot_id)
        pruned = store.prune(settings.nightly.keep_snapshots)
        seconds["verify_and_promote"] = time.perf_counter() - clock

    pairs = manifest.counts["pairs"]
    report = NightlyReport(
        snapshot_id=snapshot_id,
        model_fingerprint=scorer.fingerprint,
        counts=manifest.counts,
        queries_mined=len(queries),
        traffic_coverage=round(mined.coverage, 4),
        miss_log_queries=len(misses.queries),
        pairs_per_second=round(pairs / seconds["score_and_write"], 1) if seconds["score_and_write"] else 0.0,
        snapshot_bytes=_folder_bytes(path),
        snapshot_path=str(path),
        pruned=pruned,
        seconds={k: round(v, 2) for k, v in seconds.items()},
        item_vectors=vector_counts,
        overrides=drift.report(),
    )
    reports = Path(settings.data_dir) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"nightly-{snapshot_id}.json").write_text(report.to_json() + "\n", encoding="utf-8")
    log.info("nightly run done", extra={"snapshot_id": snapshot_id, "pairs": pairs, "seconds": report.seconds})
    return report
