"""The benchmark's own logic, without a model or a server: load generators, summaries, the traffic split.

Benchmarks assert nothing about speed; these check that what they count is counted right.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from entrel.bench.loadgen import closed_loop, open_loop
from entrel.bench.stats import Reply, Sample, summarize
from entrel.bench.traffic import one_edit_apart, split_log


def test_one_edit_apart():
    assert one_edit_apart("ofice chair", "office chair")
    assert one_edit_apart("yoga matt", "yoga mat")
    assert one_edit_apart("mug", "mgu")
    assert one_edit_apart("mug", "mag")
    assert not one_edit_apart("mug", "mug")
    assert not one_edit_apart("mug", "gum")
    assert not one_edit_apart("office chair", "ofice chairs")


def test_split_log_holds_back_near_duplicates_but_not_other_numbers():
    traffic = Counter({"office chair": 100, "ofice chair": 3, "shoes size 8": 50, "shoes size 7": 40})
    known, new = split_log(traffic)
    assert new.get("ofice chair") == "near_duplicate"
    assert new.get("shoes size 7") != "near_duplicate"
    assert set(known) == set(traffic) - set(new)


def test_summary_keeps_refusals_out_of_the_percentiles():
    samples = [Sample(i, Reply("OK", 1.0, cache_hits=9, cache_misses=1), 10.0) for i in range(9)]
    samples.append(Sample(9, Reply("RESOURCE_EXHAUSTED"), 0.1))
    summary = summarize(samples, wall_s=1.0)
    assert summary["ok"] == 9 and summary["errors"] == {"RESOURCE_EXHAUSTED": 1}
    assert summary["latency_ms"]["p50"] == 10.0
    assert summary["hit_rate"] == 0.9 and summary["throughput_rps"] == 9.0


def test_closed_loop_stops_at_the_request_count_with_every_index_once():
    seen: list[int] = []

    def call(i: int) -> Reply:
        seen.append(i)
        return Reply("OK")

    samples, _ = closed_loop(call, concurrency=3, max_requests=20, max_seconds=10)
    assert sorted(seen) == list(range(20)) and len(samples) == 20


def test_open_loop_measures_from_the_scheduled_arrival():
    def send(i: int, on_reply) -> None:  # answers 20 ms later, off the sending thread
        threading.Timer(0.02, on_reply, args=(Reply("OK"),)).start()

    started = time.perf_counter()
    samples, wall_s = open_loop(send, rate=200, max_requests=10, max_seconds=5)
    assert len(samples) == 10 and sorted(s.index for s in samples) == list(range(10))
    assert all(s.latency_ms >= 19 for s in samples)
    assert wall_s <= time.perf_counter() - started


def test_bench_only_runs_the_named_parts():
    from entrel.cli import BENCH_PARTS, _parser, bench_options

    only = bench_options(_parser().parse_args(["bench", "--only", "batch"]))
    assert only.skip == frozenset(BENCH_PARTS) - {"batch"}
    both = bench_options(_parser().parse_args(["bench", "--only", "batch", "--only", "online", "--skip", "online"]))
    assert both.skip == frozenset(BENCH_PARTS) - {"batch"}
    assert bench_options(_parser().parse_args(["bench", "--skip", "naive"])).skip == {"naive"}
