"""Cached-call latency with 10,000 overrides in force against none, measured twice.

`compare`: the engine in this process over the benchmark's snapshot (no
gRPC, so the figure is the engine's own cost, where overrides are applied),
once with an empty override store and once with a full one.
`compare_served`: what a client sees, two `entrel serve` subprocesses on
copies of the snapshot's data dir, one with an empty store and one with the
full one, the same ScoreItems calls to each. Rounds alternate in both. The
full store holds overrides of the requested queries' own entities (so they
are applied, not just looked up), a `*` layer every request meets, and the
rest on queries never requested.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from entrel.bench.stats import percentiles
from entrel.bench.target import GrpcTarget
from entrel.bench.workload import BenchRequest
from entrel.cache import SnapshotReader
from entrel.config import Settings
from entrel.overrides import ANY_QUERY, Override, OverrideKey, OverrideStore, OverrideTable, make_override
from entrel.scoring import Scorer
from entrel.service.answers import Source
from entrel.service.batcher import MicroBatcher
from entrel.service.engine import RelevanceEngine
from entrel.service.process import serving
from entrel.service.requests import ItemRequest
from entrel.text import normalize

__all__ = ["compare", "compare_served"]

# Overrides every request meets (the `*` layer), and per requested query.
_STAR = 100
_PER_QUERY = 10


class _Fixed:
    """A SnapshotSource serving one snapshot."""

    def __init__(self, snapshot: SnapshotReader) -> None:
        self.snapshot = snapshot

    def current(self) -> SnapshotReader:
        return self.snapshot


def _overrides(snapshot: SnapshotReader, requests: Sequence[BenchRequest], count: int) -> Iterator[Override]:
    rng = random.Random(0)

    def one(query: str, entity_id: int) -> Override:
        entity = snapshot.entity(entity_id)
        return make_override(OverrideKey(query, entity.type, entity.text), rng.random(), "benchmark", "bench")

    made = 0
    for _ in range(_STAR):
        yield one(ANY_QUERY, rng.randrange(snapshot.entity_count))
    made += _STAR
    for r in requests:
        ids, _ = snapshot.item_entity_ids(snapshot.item_positions(list(r.item_ids)))
        for entity_id in np.unique(ids[ids >= 0])[:_PER_QUERY].tolist():
            yield one(normalize(r.query), entity_id)
            made += 1
    for k in range(count - made):
        yield one(f"benchmark query {k}", rng.randrange(snapshot.entity_count))


def _timed_rounds(calls: Mapping[str, Callable[[int], object]], count: int, rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each named caller's calls 0..count-1, per round, each name in turn first: a load spike
    falls on both alike."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for k in range(rounds):
        for name in names if k % 2 == 0 else names[::-1]:
            for i in range(count):
                started = time.perf_counter()
                calls[name](i)
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def _summary(samples: Mapping[str, Sequence[float]], stored: int, requests: int, rounds: int) -> dict[str, Any]:
    """The figures of both comparisons: percentiles with and without overrides, and the ratio of medians."""
    none_p50, full_p50 = float(np.median(samples["none"])), float(np.median(samples["full"]))
    return {
        "overrides": stored,
        "requests": requests,
        "rounds": rounds,
        "no_overrides_ms": percentiles(samples["none"]),
        "with_overrides_ms": percentiles(samples["full"]),
        "median_ratio_with_over_none": round(full_p50 / none_p50, 3) if none_p50 else None,
    }


def compare(
    settings: Settings, snapshot: SnapshotReader, scorer: Scorer, requests: Sequence[BenchRequest], count: int, rounds: int
) -> dict[str, Any]:
    """Median engine milliseconds per cached request with `count` overrides in force and with none."""
    poll = settings.overrides.poll_interval_s
    batcher = MicroBatcher(scorer, 128, settings.server.batch_wait_ms / 1000, settings.server.queue_capacity_pairs)
    with tempfile.TemporaryDirectory(prefix="entrel-bench-overrides-") as folder:
        full = OverrideStore.open(Path(folder) / "full")
        stored = full.put_all(_overrides(snapshot, requests, count))
        engines = {
            "none": RelevanceEngine(
                settings,
                scorer.fingerprint,
                _Fixed(snapshot),
                batcher,
                overrides=OverrideTable(OverrideStore.open(Path(folder) / "empty"), poll),
            ),
            "full": RelevanceEngine(settings, scorer.fingerprint, _Fixed(snapshot), batcher, overrides=OverrideTable(full, poll)),
        }
        calls = [(r.query, [ItemRequest(i) for i in r.item_ids]) for r in requests]
        for engine in engines.values():  # warm: per-snapshot tables, each layer resolved once
            for query, items in calls:
                engine.score(query, items)
        # How many (item, entity) slots the full store actually changes per round of requests.
        explained = [engines["full"].score(query, items, explain=True) for query, items in calls]
        overridden = sum(e.source == Source.OVERRIDE for r in explained for i in r.items for e in i.entities or ())

        def scoring(engine: RelevanceEngine) -> Callable[[int], object]:
            return lambda i: engine.score(*calls[i])

        samples = _timed_rounds({name: scoring(engine) for name, engine in engines.items()}, len(calls), rounds)
    batcher.close()
    return {**_summary(samples, stored, len(calls), rounds), "entities_overridden_per_round": overridden}


def compare_served(
    settings: Settings,
    server_args: Sequence[str],
    snapshot: SnapshotReader,
    requests: Sequence[BenchRequest],
    count: int,
    rounds: int,
) -> dict[str, Any]:
    """Median client milliseconds per cached ScoreItems call, against a server with `count` overrides and one with none."""
    timeout_s = settings.server.default_deadline_ms / 1000
    with tempfile.TemporaryDirectory(prefix="entrel-bench-overrides-") as folder:
        data_dirs = {name: Path(folder) / name for name in ("none", "full")}
        for data_dir in data_dirs.values():
            shutil.copytree(settings.snapshot_root, settings.replace(data_dir=str(data_dir)).snapshot_root)
        full = OverrideStore.open(settings.replace(data_dir=str(data_dirs["full"])).overrides_dir)
        stored = full.put_all(_overrides(snapshot, requests, count))
        logs = Path(settings.data_dir) / "logs"
        with (
            serving([*server_args, f"--set=data_dir={data_dirs['none']}"], logs / "server-overrides-none.log") as none,
            serving([*server_args, f"--set=data_dir={data_dirs['full']}"], logs / "server-overrides-full.log") as with_full,
            GrpcTarget(none.address, requests, timeout_s) as to_none,
            GrpcTarget(with_full.address, requests, timeout_s) as to_full,
        ):
            targets = {"none": to_none, "full": to_full}
            for target in targets.values():  # warm: per-snapshot tables, each layer resolved once
                for i in range(len(requests)):
                    target.call(i)

            def checked(name: str) -> Callable[[int], object]:
                def call(i: int) -> object:
                    reply = targets[name].call(i)
                    if reply.code != "OK":
                        raise RuntimeError(f"a cached call to the server with overrides {name!r} failed: {reply.code}")
                    return reply

                return call

            samples = _timed_rounds({name: checked(name) for name in targets}, len(requests), rounds)
    return _summary(samples, stored, len(requests), rounds)
