"""The micro-batcher: sharing, order, load shedding, deadlines; with a scripted scorer (exact, instant) and the real model."""

from __future__ import annotations

import time

import pytest
from fakes import ScriptedScorer

from entrel.service.batcher import DeadlineExceeded, MicroBatcher, Overloaded

PAIRS = [(f"query {i % 7}", f"color: shade {i}") for i in range(300)]


@pytest.fixture
def batcher(scorer):
    b = MicroBatcher(scorer, max_batch_pairs=64, max_wait_s=0.002, capacity=1000)
    yield b
    b.close()


def test_results_match_direct_scoring_and_identical_pairs_are_shared(batcher, scorer):
    far = time.monotonic() + 60
    first = batcher.submit(PAIRS[:50], far)
    second = batcher.submit(PAIRS[25:75], far)  # half already in flight
    assert all(a is b for a, b in zip(first[25:], second[:25], strict=True))
    values = [f.result(timeout=60) for f in first + second[25:]]
    direct = scorer.score(PAIRS[:75])
    assert values == pytest.approx(direct.tolist(), abs=1e-5)


def test_full_queue_is_refused_at_once(scorer):
    b = MicroBatcher(scorer, max_batch_pairs=64, max_wait_s=0.002, capacity=100)
    try:
        b.submit(PAIRS[:90], time.monotonic() + 60)
        started = time.monotonic()
        with pytest.raises(Overloaded, match="capacity 100"):
            b.submit(PAIRS[100:120], time.monotonic() + 60)
        assert time.monotonic() - started < 0.05
        # pairs already in flight cost nothing more: accepted
        assert len(b.submit(PAIRS[:10], time.monotonic() + 60)) == 10
    finally:
        b.close()


def test_backlog_past_the_deadline_is_refused(batcher):
    batcher.submit(PAIRS[:2], time.monotonic() + 60)[0].result(timeout=60)  # the rate is now measured
    batcher.submit(PAIRS[2:300], time.monotonic() + 60)
    with pytest.raises(Overloaded, match="past this request's deadline"):
        batcher.submit([("another", "color: red")], time.monotonic() + 0.01)


def test_expired_pairs_are_dropped_not_scored(scorer):
    b = MicroBatcher(scorer, max_batch_pairs=8, max_wait_s=0.002, capacity=1000)
    try:
        futures = b.submit(PAIRS[:200], time.monotonic() + 0.05)
        errors = [f.exception(timeout=60) for f in futures]
        assert any(isinstance(e, DeadlineExceeded) for e in errors)
        assert b.pending() == 0
    finally:
        b.close()


@pytest.fixture
def held():
    """A batcher whose scripted scorer holds every batch until its gate is set."""
    scorer = ScriptedScorer(default=0.25)
    scorer.gate.clear()
    b = MicroBatcher(scorer, max_batch_pairs=64, max_wait_s=0.001, capacity=4)
    yield b, scorer
    scorer.gate.set()
    b.close()


def test_identical_pairs_in_flight_are_scored_once(held):
    b, scorer = held
    far = time.monotonic() + 60
    first = b.submit([PAIRS[0], PAIRS[1], PAIRS[0]], far)
    second = b.submit([PAIRS[1], PAIRS[2]], far)
    assert first[0] is first[2] and first[1] is second[0]
    scorer.gate.set()
    assert [f.result(timeout=5) for f in first + second] == [0.25] * 5
    assert sorted(scorer.pairs) == sorted(PAIRS[:3])
    assert b.pending() == 0


def test_capacity_counts_distinct_pending_pairs(held):
    b, _ = held
    far = time.monotonic() + 60
    b.submit(PAIRS[:4], far)
    with pytest.raises(Overloaded, match=r"full \(4 pending pairs, capacity 4\)"):
        b.submit([PAIRS[0], PAIRS[4]], far)
    assert len(b.submit(PAIRS[:4], far)) == 4  # all in flight already: nothing more to hold
    assert b.pending() == 4
