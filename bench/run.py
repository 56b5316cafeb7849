"""Runs the whole benchmark in one go and writes every figure to JSON.

Order: data and snapshot; offline precompute (nothing else running); the
naive way in this process; entrel over gRPC in a server subprocess at
100%, 90% and 0% cache hits, closed and open loop; ScoreBatch of 10 cached
groups against 10 ScoreItems calls; the engine's cached latency with 10,000
overrides in force against none; the day of traffic before and after a
nightly run. The naive and entrel figures come from the
same run on the same requests, so their ratios are comparable even on a
busy machine; absolute numbers are only as quiet as the machine was.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from entrel.bench import batch, overrides, precompute, traffic
from entrel.bench.data import BenchData, prepare
from entrel.bench.loadgen import closed_loop, open_loop
from entrel.bench.naive import NaiveTarget, item_text
from entrel.bench.report import git_state, machine, ratios, render
from entrel.bench.stats import summarize
from entrel.bench.target import GrpcTarget
from entrel.bench.workload import BenchRequest, Workload
from entrel.catalog import iter_items, read_catalog
from entrel.config import Settings
from entrel.scoring import CrossEncoderScorer, load_cross_encoder
from entrel.service.process import serving

__all__ = ["FULL", "QUICK", "Options", "Plan", "run"]

log = logging.getLogger(__name__)

HIT_TARGETS = (1.0, 0.9, 0.0)
# ScoreBatch groups (1 query x 100 items each) and overrides in force for the interventions' cost.
BATCH_GROUPS = 10
OVERRIDES = 10_000
# Unmeasured requests sent before each hit-rate target's scenarios.
_WARMUP_REQUESTS = 3
# Pause between scenarios, so one's backlog does not spill into the next.
_SETTLE_S = 1.0


@dataclass(frozen=True)
class Plan:
    """How much to run. Each scenario stops at `requests` or `duration_s`, whichever comes first."""

    requests: int
    duration_s: float
    concurrency: tuple[int, ...]
    # Open-loop arrival rates (requests/s) by target hit rate: lower where every pair is live.
    rates: dict[float, tuple[float, ...]]
    # Distinct requests per hit-rate target (cycled through), enough that
    # concurrent clients rarely send the same query at once.
    distinct_requests: int
    precompute_pairs: int
    traffic_requests: int
    # The day of traffic uses this many most frequent log queries (None: all).
    traffic_log_queries: int | None = None
    # ScoreBatch vs separate calls, and the engine with and without overrides: rounds of each.
    batch_rounds: int = 200
    override_rounds: int = 50


FULL = Plan(
    requests=2000,
    duration_s=15.0,
    concurrency=(1, 4, 16),
    rates={1.0: (50, 100, 200, 400), 0.9: (25, 50, 100, 200), 0.0: (2, 5, 10, 20)},
    distinct_requests=64,
    precompute_pairs=5000,
    traffic_requests=1000,
)
QUICK = Plan(
    requests=30,
    duration_s=4.0,
    concurrency=(1, 4),
    rates={1.0: (50, 200), 0.9: (50,), 0.0: (5,)},
    distinct_requests=16,
    precompute_pairs=300,
    traffic_requests=60,
    traffic_log_queries=60,
    batch_rounds=20,
    override_rounds=5,
)


@dataclass(frozen=True)
class Options:
    out: Path = Path("bench.json")
    data: str = "demo"
    data_dir: str | None = None
    quick: bool = False
    requests: int | None = None
    duration_s: float | None = None
    fresh: bool = False
    skip: frozenset[str] = frozenset()
    # The CLI's --config/--set flags, passed on to the server subprocess.
    config_args: tuple[str, ...] = field(default_factory=tuple)

    def plan(self) -> Plan:
        plan = QUICK if self.quick else FULL
        if self.requests is not None:
            plan = dataclasses.replace(plan, requests=self.requests)
        if self.duration_s is not None:
            plan = dataclasses.replace(plan, duration_s=self.duration_s)
        return plan


@dataclass(frozen=True)
class Load:
    """Closed loop with `concurrency` clients, or open loop at `rate_rps` arrivals per second."""

    mode: str
    concurrency: int | None = None
    rate_rps: float | None = None


def _loads(plan: Plan, hit_target: float | None) -> list[Load]:
    """Every concurrency, then (for entrel) every open-loop rate of this hit rate."""
    closed = [Load("closed", concurrency=c) for c in plan.concurrency]
    rates = plan.rates.get(hit_target, ()) if hit_target is not None else ()
    return closed + [Load("open", rate_rps=r) for r in rates]


def _measure(target: GrpcTarget | NaiveTarget, load: Load, plan: Plan) -> dict[str, Any]:
    if load.mode == "closed":
        samples, wall_s = closed_loop(target.call, load.concurrency or 1, plan.requests, plan.duration_s)
    else:
        assert isinstance(target, GrpcTarget), "only the server is driven open-loop"
        samples, wall_s = open_loop(target.send, load.rate_rps or 1.0, plan.requests, plan.duration_s)
    row = {**dataclasses.asdict(load), **summarize(samples, wall_s)}
    log.info("scenario done", extra={**dataclasses.asdict(load), "throughput_rps": row["throughput_rps"]})
    return row


def _planned(requests: list[BenchRequest]) -> float | None:
    rates = [r.planned_hit_rate for r in requests if r.planned_hit_rate is not None]
    return round(float(np.mean(rates)), 4) if rates else None


def _naive(settings: Settings, device: str, requests: list[BenchRequest], plan: Plan) -> list[dict[str, Any]]:
    """The same model on every (query, item text) pair of `requests`, at each concurrency."""
    model = load_cross_encoder(settings.model.name_or_path, device=device, max_length=settings.model.max_length)
    texts = {item.item_id: item_text(item) for item in iter_items(read_catalog(settings.catalog))}
    target = NaiveTarget(model, texts, requests)
    target.call(0)
    return [{"system": "naive", "hit_target": None, **_measure(target, load, plan)} for load in _loads(plan, None)]


def _online(settings: Settings, server_args: list[str], sets: dict[float, list[BenchRequest]], plan: Plan) -> dict[str, Any]:
    """Every hit-rate target, closed then open loop, against one `entrel serve` subprocess."""
    timeout_s = settings.server.default_deadline_ms / 1000
    log_path = Path(settings.data_dir) / "logs" / "server-online.log"
    rows: list[dict[str, Any]] = []
    with serving(server_args, log_path) as served:
        for hit_target, requests in sets.items():
            if not requests:
                log.warning("no requests reach this hit rate on this snapshot: skipped", extra={"hit_target": hit_target})
                continue
            base = {"system": "entrel", "hit_target": hit_target, "planned_hit_rate": _planned(requests)}
            with GrpcTarget(served.address, requests, timeout_s) as target:
                for i in range(_WARMUP_REQUESTS):
                    target.call(i)
                for load in _loads(plan, hit_target):
                    time.sleep(_SETTLE_S)
                    rows.append({**base, **_measure(target, load, plan)})
    server = {"process": "entrel serve", "startup_s": round(served.startup_s, 2), "log": str(log_path)}
    return {"server": server, "scenarios": rows}


def _batch(settings: Settings, server_args: list[str], requests: list[BenchRequest], plan: Plan) -> dict[str, Any]:
    """ScoreBatch of BATCH_GROUPS cached requests against as many ScoreItems calls, against its own server."""
    log_path = Path(settings.data_dir) / "logs" / "server-batch.log"
    with serving(server_args, log_path) as served:
        timeout_s = settings.server.default_deadline_ms / 1000
        return batch.compare(served.address, requests, BATCH_GROUPS, plan.batch_rounds, timeout_s)


def _context(
    options: Options, plan: Plan, scorer: CrossEncoderScorer, data: BenchData, sets: dict[float, list[BenchRequest]]
) -> dict[str, Any]:
    """When, where, with what: everything needed to compare this run with another."""
    settings = data.settings
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": git_state(),
        "model": {
            "name": settings.model.name_or_path,
            "fingerprint": scorer.fingerprint,
            "device": scorer.device,
            "dtype": str(scorer.dtype),
        },
        "options": {**dataclasses.asdict(options), "out": str(options.out), "skip": sorted(options.skip)},
        "plan": dataclasses.asdict(plan),
        "settings": dataclasses.asdict(settings),
        "setup": {
            "data": options.data,
            "data_dir": settings.data_dir,
            "snapshot_id": data.snapshot.snapshot_id,
            "snapshot_counts": data.snapshot.manifest.counts,
            "nightly_ran": data.nightly is not None,
            "nightly": data.nightly,
            "requests_per_hit_target": {f"{t:.0%}": len(r) for t, r in sets.items()},
        },
    }


def run(settings: Settings, options: Options) -> dict[str, Any]:
    """Run the parts not in `options.skip`; write the JSON, print the tables, return the results."""
    plan = options.plan()
    load_before = os.getloadavg()
    scorer = CrossEncoderScorer(settings.model)
    data = prepare(settings, options.data, options.data_dir, options.fresh, scorer)
    settings = data.settings
    server_args = data.config_args(list(options.config_args))
    workload = Workload(data.snapshot)
    sets = {target: workload.at_hit_rate(target, plan.distinct_requests) for target in HIT_TARGETS}
    results = _context(options, plan, scorer, data, sets)
    if "precompute" not in options.skip:
        pairs = precompute.candidate_pairs(data.snapshot, plan.precompute_pairs)
        results["precompute"] = {"pairs": len(pairs), "rows": precompute.run(settings.model, pairs)}
    if "naive" not in options.skip:
        # The naive cost does not depend on the cache: any requests will do, the cached ones preferably.
        naive = _naive(settings, scorer.device, sets[1.0] or sets[0.0], plan)
        results["naive"] = {"process": "the benchmark's own, no gRPC", "scenarios": naive}
    if "online" not in options.skip:
        results["online"] = _online(settings, server_args, sets, plan)
    online_rows = results.get("online", {}).get("scenarios", [])
    results["ratios"] = ratios(online_rows, results.get("naive", {}).get("scenarios", []))
    cached = sets[1.0] or sets[0.9]
    if "batch" not in options.skip and cached:
        results["batch"] = _batch(settings, server_args, cached, plan)
    if "overrides" not in options.skip and cached:
        results["overrides"] = overrides.compare(
            settings, data.snapshot, scorer, cached[:BATCH_GROUPS], OVERRIDES, plan.override_rounds
        )
        results["overrides_served"] = overrides.compare_served(
            settings, server_args, data.snapshot, cached[:BATCH_GROUPS], OVERRIDES, plan.override_rounds
        )
    if "traffic" not in options.skip:
        results["traffic"] = traffic.run(settings, scorer, workload, server_args, plan.traffic_requests, plan.traffic_log_queries)
    results["load_average"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(render(results))
    print(f"\nall figures: {options.out}")
    return results
