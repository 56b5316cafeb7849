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
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)


def test_threads_never_hold_more_slots_than_there_are() -> None:
    slots, most, lock = Slots(3), [0], threading.Lock()
    holding = [0]

    def worker() -> None:
        for _ in range(2000):
            if slots.take() is None:
                continue
            with lock:
                holding[0] += 1
                most[0] = max(most[0], holding[0])
            with lock:
                holding[0] -= 1
            slots.give_back()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= most[0] <= 3
    assert slots.take() == 1
