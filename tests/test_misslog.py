"""The miss log under a flood: merged repeats, a size cap per file and in total, a bounded read."""

from __future__ import annotations

from collections import Counter

from entrel.cache.misslog import MissLogWriter, read_misses
from entrel.catalog import Entity

CHAIR = [Entity.of("product_type", "office chair"), Entity.of("color", "red")]


def test_repeats_within_a_window_become_one_counted_record(tmp_path):
    writer = MissLogWriter(tmp_path, window_s=3600)
    for _ in range(50):
        writer.record("red chair", CHAIR, query_cached=False)
    for _ in range(3):
        writer.record("blue chair", CHAIR[:1], query_cached=True)
    writer.close()
    lines = [line for p in tmp_path.glob("misses-*.jsonl") for line in p.read_text().splitlines()]
    assert len(lines) == 2
    summary = read_misses(tmp_path, max_age_days=1, max_queries=10)
    assert summary.queries == Counter({"red chair": 50, "blue chair": 3})
    assert summary.pairs["red chair"] == Counter({CHAIR[0]: 50, CHAIR[1]: 50})


def test_a_flood_of_distinct_misses_stays_under_the_caps_and_the_loss_is_counted(tmp_path):
    dropped: Counter[str] = Counter()
    writer = MissLogWriter(
        tmp_path, window_s=3600, file_bytes=4000, total_bytes=10000, on_drop=lambda reason, n: dropped.update({reason: n})
    )
    for i in range(3000):
        writer.record(f"query number {i} " + "\ufdfa" * 20, CHAIR, query_cached=False)
        if i % 100 == 99:
            writer.flush()
    writer.close()
    sizes = [p.stat().st_size for p in tmp_path.glob("misses-*.jsonl")]
    assert sum(sizes) <= 10000 and max(sizes) <= 4000
    assert dropped["deleted_bytes"] > 100000  # what the flood wrote beyond the cap
    # the newest records survive
    assert "query number 2999 " + "\ufdfa" * 20 in read_misses(tmp_path, 1, max_queries=10000).queries


def test_the_nightly_reads_only_the_most_missed_queries(tmp_path):
    writer = MissLogWriter(tmp_path, window_s=3600)
    for i in range(200):
        for _ in range(1 + i % 5):
            writer.record(f"query {i}", CHAIR, query_cached=False)
    writer.close()
    summary = read_misses(tmp_path, max_age_days=1, max_queries=10)
    assert len(summary.queries) == len(summary.pairs) == 10
    assert set(summary.queries.values()) == {5}
