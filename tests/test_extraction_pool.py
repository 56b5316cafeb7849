"""Inline extraction in worker processes: same entities as in-process, bounded by the deadline, survives a
killed worker."""

import os
import signal
import time

import pytest

from entrel.catalog import CatalogItem, EntityExtractor, Vocabulary
from entrel.config import ExtractionSettings
from entrel.service.extraction import InlineExtraction

CATALOG = [
    CatalogItem("1", "Acme ErgoPro Leather Office Chair", brand="Acme", category=("Furniture", "Office Chairs")),
    CatalogItem("2", "Zeta Runner Shoes", brand="Zeta", color="Red", category=("Shoes", "Running Shoes")),
]
VOCABULARY = Vocabulary.learn(CATALOG)
INLINE = [
    CatalogItem("a", "Acme mesh office chair, black", brand="Acme"),
    CatalogItem("b", "Zeta trail running shoes in blue", attributes={"material": "Suede"}),
]


@pytest.fixture(scope="module")
def pool():
    extraction = InlineExtraction(ExtractionSettings(), workers=1)
    extraction.use("snap-1", VOCABULARY.to_json())
    yield extraction
    extraction.close()


def far() -> float:
    """No deadline pressure (workers start slowly on a loaded 2-core machine)."""
    return time.monotonic() + 600


def test_workers_extract_what_the_serving_process_would(pool):
    in_process = EntityExtractor(ExtractionSettings(), VOCABULARY)
    assert pool.extract("snap-1", VOCABULARY.to_json(), INLINE, far()) == [in_process.extract(i) for i in INLINE]


def test_a_new_snapshot_key_brings_its_own_vocabulary(pool):
    unknown_brand = [CatalogItem("c", "Quorra desk lamp", brand="Quorra")]
    with_quorra = Vocabulary.learn([*CATALOG, CatalogItem("q", "Quorra Lamp", brand="Quorra", category=("Lamps",))])
    expected = EntityExtractor(ExtractionSettings(), with_quorra).extract(unknown_brand[0])
    try:
        assert pool.extract("snap-2", with_quorra.to_json(), unknown_brand, far()) == [expected]
    finally:
        pool.use("snap-1", VOCABULARY.to_json())


def test_items_past_the_deadline_are_degraded_not_waited_for(pool):
    started = time.monotonic()
    many = [CatalogItem(str(k), f"office chair model {k} " + "ergonomic mesh " * 60) for k in range(60)]
    out = pool.extract("snap-1", VOCABULARY.to_json(), many, time.monotonic() + 0.05)
    assert time.monotonic() - started < 1.0, "the caller must not wait past its time"
    assert None in out, "60 long items cannot all be extracted in 50 ms"
    # The cancelled items do not hold up the next request.
    assert pool.extract("snap-1", VOCABULARY.to_json(), INLINE[:1], far())[0]


def test_a_killed_worker_costs_its_items_and_the_next_call_gets_new_workers():
    extraction = InlineExtraction(ExtractionSettings(), workers=1)
    try:
        extraction.use("snap-1", VOCABULARY.to_json())
        (worker,) = extraction.worker_pids()
        os.kill(worker, signal.SIGKILL)
        time.sleep(0.5)
        first = extraction.extract("snap-1", VOCABULARY.to_json(), INLINE, far())
        assert first == [None, None] or all(first), "a dead worker degrades the items it held, nothing else"
        assert all(extraction.extract("snap-1", VOCABULARY.to_json(), INLINE, far()))
        assert worker not in extraction.worker_pids()
    finally:
        extraction.close()


def test_every_worker_starts_when_the_pool_is_prepared_not_under_load():
    # The pool spawns a worker only when a submission finds none idle: preparing it must start them all,
    # and each must have loaded spaCy (a second request at once finds both ready, no new process).
    extraction = InlineExtraction(ExtractionSettings(), workers=2)
    try:
        extraction.use("snap-1", VOCABULARY.to_json())
        workers = extraction.worker_pids()
        assert len(workers) == 2
        assert all(extraction.extract("snap-1", VOCABULARY.to_json(), INLINE, far()))
        assert extraction.worker_pids() == workers
    finally:
        extraction.close()


def test_warming_up_stops_at_its_limit(monkeypatch):
    """Workers take seconds to start (spawn, then spaCy); with a limit of 50 ms the swap goes on without them,
    and the pool still extracts once they are up."""
    monkeypatch.setattr("entrel.service.extraction._WARM_UP_LIMIT_S", 0.05)
    extraction = InlineExtraction(ExtractionSettings(), workers=1)
    try:
        started = time.monotonic()
        extraction.use("snap-1", VOCABULARY.to_json())
        assert time.monotonic() - started < 1.0, "use() waited past its warm-up limit"
        in_process = EntityExtractor(ExtractionSettings(), VOCABULARY)
        assert extraction.extract("snap-1", VOCABULARY.to_json(), INLINE[:1], far()) == [in_process.extract(INLINE[0])]
    finally:
        extraction.close()
