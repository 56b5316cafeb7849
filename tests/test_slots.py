"""The inline-request admission: never more holders than slots, and a holder learns when it is alone."""

from __future__ import annotations

import threading

import pytest

from entrel.service.slots import Slots


def test_slots_admit_up_to_the_limit_and_count_the_holders() -> None:
    slots = Slots(2)
    assert slots.take() == 1
    assert not slots.full
    assert slots.take() == 2
    assert slots.full
    assert slots.take() is None
    slots.give_back()
    assert not slots.full
    assert slots.take() == 2


def test_giving_back_a_slot_nobody_holds_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no slot"):
        Slots(1).give_back()


def test_there_is_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)


def test_threads_that_hold_their_slots_together_get_exactly_the_limit() -> None:
    """Eight threads take a slot at once and keep it: three get one each (counted 1, 2, 3), five are refused."""
    slots, release = Slots(3), threading.Event()
    all_tried = threading.Barrier(8 + 1)
    got: list[int | None] = []
    lock = threading.Lock()

    def holder() -> None:
        taken = slots.take()
        with lock:
            got.append(taken)
        all_tried.wait()
        if taken is not None:
            release.wait()
            slots.give_back()

    threads = [threading.Thread(target=holder) for _ in range(8)]
    for t in threads:
        t.start()
    all_tried.wait()
    assert sorted(g for g in got if g is not None) == [1, 2, 3]
    assert got.count(None) == 5
    assert slots.full
    release.set()
    for t in threads:
        t.join()
    assert slots.take() == 1
