"""The micro-batcher with the real model: sharing, order, load shedding, deadlines."""

from __future__ import annotations

import time

import pytest

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
