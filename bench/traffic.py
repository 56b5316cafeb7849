"""Misses feed the next night: the hit rate of a day of traffic before and after one nightly run.

The query log is split into what the first night knows and "new traffic":
its near-duplicates (one edit away from a more frequent query with the
same numbers: typos such as ``ofice chair`` and ``yoga matt``, plurals,
spelling variants) and a fixed slice of the other distinct queries
(chosen by hash). The first snapshot is built without them. A day
of traffic is then sampled from the whole log by count, each request with
its top candidate items, and replayed through a real server, whose miss
log the next nightly run reads; the same traffic is replayed against the
new snapshot. Hit rates are traffic-weighted: every sampled request counts.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from entrel.bench.loadgen import closed_loop
from entrel.bench.stats import Sample, hit_rate, summarize
from entrel.bench.target import GrpcTarget
from entrel.bench.workload import BenchRequest, Workload
from entrel.config import Settings
from entrel.offline import nightly
from entrel.offline.mine_queries import read_query_log
from entrel.scoring import Scorer
from entrel.service.process import serving

__all__ = ["one_edit_apart", "run", "split_log"]

_HELD_BACK_SHARE = 0.10
_NUMBER = re.compile(r"\d+")
# Near-duplicates are looked for among this many most frequent queries.
_REFERENCES = 1000
_REPLAY_CONCURRENCY = 4
_REPLAY_MAX_SECONDS = 600.0
# The question here is the hit rate, not latency: a deadline long enough
# that every request is answered (a failed one reports no hits or misses).
_REPLAY_TIMEOUT_S = 60.0


def one_edit_apart(a: str, b: str) -> bool:
    """True when `a` and `b` differ by one insertion, deletion, substitution or adjacent swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    swapped = i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    return a[i + 1 :] == b[i + 1 :] or swapped


def _held_back(query: str) -> bool:
    return hashlib.blake2b(query.encode("utf-8"), digest_size=2).digest()[0] < 256 * _HELD_BACK_SHARE


def _near_duplicate(query: str, other: str) -> bool:
    """One edit apart, not in a number: ``size 7`` and ``size 8`` are different needs."""
    return one_edit_apart(query, other) and _NUMBER.findall(query) == _NUMBER.findall(other)


def split_log(traffic: Counter[str]) -> tuple[Counter[str], dict[str, str]]:
    """(what the first night sees, new queries -> why they are new: "near_duplicate" or "held_back")."""
    by_count = sorted(traffic, key=lambda q: (-traffic[q], q))
    references = by_count[:_REFERENCES]
    new: dict[str, str] = {}
    for rank, query in enumerate(by_count):
        if any(_near_duplicate(query, other) for other in references[:rank]):
            new[query] = "near_duplicate"
        elif _held_back(query):
            new[query] = "held_back"
    return Counter({q: c for q, c in traffic.items() if q not in new}), new


def _sample(traffic: Counter[str], n: int, seed: int) -> list[str]:
    queries = sorted(traffic)
    counts = np.array([traffic[q] for q in queries], dtype=np.float64)
    picks = np.random.default_rng(seed).choice(len(queries), size=n, p=counts / counts.sum())
    return [queries[i] for i in picks]


def _write_log(traffic: Counter[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for query, count in traffic.most_common():
            f.write(json.dumps({"query": query, "count": count}, ensure_ascii=False) + "\n")


def _hit_rates(samples: Sequence[Sample], groups: Sequence[str]) -> dict[str, float | None]:
    """Hit rate of all traffic and of each group of queries (logged, held_back, near_duplicate)."""
    out = {"all": hit_rate(samples)}
    for group in sorted(set(groups)):
        out[group] = hit_rate([s for s in samples if groups[s.index] == group])
    return out


def run(
    settings: Settings,
    scorer: Scorer,
    workload: Workload,
    server_args: list[str],
    n_requests: int,
    log_queries: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Night one without the new queries, a day of traffic, night two with its miss log, the same day again.

    `log_queries` keeps only that many most frequent queries of the log
    (smaller nightly runs, for a smoke run).
    """
    directory = Path(settings.data_dir) / "day"
    shutil.rmtree(directory, ignore_errors=True)
    traffic = Counter(dict(read_query_log(settings.nightly.query_log).most_common(log_queries)))
    known, new = split_log(traffic)
    overrides = {
        "data_dir": str(directory),
        "nightly.query_log": str(directory / "query_log.jsonl"),
        "nightly.use_miss_log": "true",
        "server.log_misses": "true",
    }
    _write_log(known, Path(overrides["nightly.query_log"]))
    day = settings.replace(**overrides)
    args = [*server_args, *(f"--set={key}={value}" for key, value in overrides.items())]

    queries = _sample(traffic, n_requests, seed)
    candidates = {q: workload.candidates(q) for q in set(queries)}
    requests = [BenchRequest(q, candidates[q]) for q in queries]
    groups = [new.get(q, "logged") for q in queries]

    def replay(night: str) -> dict[str, Any]:
        with (
            serving(args, directory / "logs" / f"server-{night}.log") as served,
            GrpcTarget(served.address, requests, _REPLAY_TIMEOUT_S) as target,
        ):
            samples, wall_s = closed_loop(target.call, _REPLAY_CONCURRENCY, len(requests), _REPLAY_MAX_SECONDS)
        return {"hit_rate": _hit_rates(samples, groups), "replay": summarize(samples, wall_s)}

    nights = []
    for night in ("first", "second"):
        report = nightly.run(day, scorer=scorer, progress=False)
        nights.append({"night": night, **{k: v for k, v in asdict(report).items() if k != "pruned"}, **replay(night)})
    shares = Counter(groups)
    return {
        "requests": len(requests),
        "distinct_queries": len(candidates),
        "replay_concurrency": _REPLAY_CONCURRENCY,
        "log_queries": len(traffic),
        "new_queries": dict(Counter(new.values())),
        "new_query_examples": {why: sorted(q for q, w in new.items() if w == why)[:8] for why in sorted(set(new.values()))},
        "traffic_share": {group: round(n / len(groups), 4) for group, n in sorted(shares.items())},
        "nights": nights,
        "hit_rate_before": nights[0]["hit_rate"]["all"],
        "hit_rate_after": nights[1]["hit_rate"]["all"],
    }
