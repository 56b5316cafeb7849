"""Overrides without a model: the real LMDB store and audit log, the in-memory table, and the engine applying them
over an in-memory snapshot with a scripted scorer (see fakes.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from fakes import ACME, BLUE, CHAIR, QUERY, RED, Engines, MemorySnapshot

from entrel.catalog import CatalogItem, Entity
from entrel.overrides import (
    InvalidOverride,
    OverrideDrift,
    OverrideKey,
    OverrideStore,
    OverrideTable,
    make_override,
    override_key,
)
from entrel.render import render_explanation, render_ranking
from entrel.service.answers import ItemStatus, Source
from entrel.service.requests import ItemRequest
from entrel.v1 import relevance_pb2 as pb

ITEMS = {
    "red-chair": ("Red office chair", [CHAIR, RED]),
    "blue-chair": ("Blue office chair", [CHAIR, BLUE]),
    "acme-chair": ("Acme office chair", [CHAIR, ACME]),
}
ROWS = {QUERY: {CHAIR: 1.0, RED: 1.0, BLUE: 0.0}, "office chair": {CHAIR: 1.0, RED: 0.5, BLUE: 0.5}}
LIVE = {(QUERY, ACME.render()): 0.4, ("office chair", ACME.render()): 0.5}


def put(store: OverrideStore, query: str, type_: str, text: str, score: float | None, reason: str = "test") -> None:
    store.put(make_override(override_key(query, type_, text, 512), score, reason, "admin"))


@pytest.fixture
def store(tmp_path):
    return OverrideStore.open(tmp_path / "overrides")


@pytest.fixture
def make_engine(store):
    engines = Engines()

    def make(poll_interval_s: float = 0.25):
        return engines.make(MemorySnapshot(ITEMS, ROWS), LIVE, overrides=OverrideTable(store, poll_interval_s))

    yield make
    engines.close()


def entities(result, item: int) -> dict[Entity, tuple[float, Source, str]]:
    return {e.entity: (round(e.score, 4), e.source, e.reason) for e in result.items[item].entities}


def test_keys_use_the_cache_key_normalisation_and_the_extractors_canonical_texts():
    key = override_key("  Red   OFFICE Chair\u200b ", "Color", "Grey", 512)
    assert key == OverrideKey(QUERY, Entity.of("color", "gray").type, "gray")
    assert override_key("*", "product type", "Office Chairs", 512).entity == CHAIR
    assert override_key("*", "brand", "Visit the Acme Store", 512).entity == ACME
    assert override_key(QUERY, "color", "", 512).ignores_type


@pytest.mark.parametrize(
    ("query", "type_", "text", "score", "message"),
    [
        ("", "color", "red", 0.5, "query is empty"),
        ("\u200b  ", "color", "red", 0.5, "query is empty"),
        (QUERY, "flavour", "red", 0.5, "unknown entity type"),
        (QUERY, "color", "red", 1.5, r"within \[0, 1\]"),
        (QUERY, "color", "red", -0.1, r"within \[0, 1\]"),
        (QUERY, "color", "red", math.nan, r"within \[0, 1\]"),
        (QUERY, "color", "red", None, "leave the entity text empty"),
        (QUERY, "color", "", 0.3, "ignore the whole type"),
        (QUERY, "brand", "N/A", 0.3, "the extractor would keep"),
    ],
)
def test_bad_overrides_are_refused(query, type_, text, score, message):
    with pytest.raises(InvalidOverride, match=message):
        make_override(override_key(query, type_, text, 512), score, "reason", "admin")


def test_a_reason_is_required():
    with pytest.raises(InvalidOverride, match="reason is required"):
        make_override(override_key(QUERY, "color", "red", 512), 0.2, "  ", "admin")


def test_overrides_replace_cached_and_live_scores_and_are_explained(make_engine, store):
    put(store, QUERY, "color", "red", 0.0, "red chairs are out of stock")
    put(store, QUERY, "brand", "acme", 1.0, "acme promotion")
    engine, scorer = make_engine()
    result = engine.score(QUERY, [ItemRequest("red-chair"), ItemRequest("acme-chair"), ItemRequest("blue-chair")], explain=True)
    assert entities(result, 0) == {
        CHAIR: (1.0, Source.CACHED, ""),
        RED: (0.0, Source.OVERRIDE, "red chairs are out of stock"),
    }
    assert entities(result, 1)[ACME] == (1.0, Source.OVERRIDE, "acme promotion")
    assert entities(result, 2)[BLUE] == (0.0, Source.CACHED, "")
    # The overridden miss was never sent to the model, nor counted as a miss.
    assert scorer.pairs == [] and (result.cache_misses, result.live_scored_pairs) == (0, 0)
    red, acme, blue = result.items
    assert red.score == pytest.approx(0.0) and red.entities[1].breaks_match
    assert acme.score == pytest.approx(1.0) and acme.status == ItemStatus.OK
    assert blue.score == pytest.approx(0.0)


def test_query_specific_beats_star_and_an_entity_beats_its_ignored_type(make_engine, store):
    put(store, "*", "color", "red", 0.2, "star red")
    put(store, "*", "brand", "", None, "brands never matter")
    put(store, "*", "color", "blue", 0.8, "star blue")
    put(store, QUERY, "color", "", None, "colors do not matter here")
    put(store, QUERY, "color", "red", 0.9, "but red does")
    put(store, QUERY, "brand", "acme", 0.0, "no acme for this query")
    engine, scorer = make_engine()
    items = [ItemRequest("red-chair"), ItemRequest("blue-chair"), ItemRequest("acme-chair")]
    specific = engine.score(QUERY, items, explain=True)
    assert entities(specific, 0)[RED] == (0.9, Source.OVERRIDE, "but red does")
    # Blue contradicted the query in the snapshot; its type is ignored here, which beats `*`'s blue: neutral, it fits again.
    assert entities(specific, 1)[BLUE] == (0.5, Source.OVERRIDE, "colors do not matter here")
    assert specific.items[1].score == pytest.approx(1.0)
    assert entities(specific, 2)[ACME] == (0.0, Source.OVERRIDE, "no acme for this query")
    other = engine.score("Office Chair", items, explain=True)
    assert entities(other, 0)[RED] == (0.2, Source.OVERRIDE, "star red")
    assert entities(other, 1)[BLUE] == (0.8, Source.OVERRIDE, "star blue")
    assert entities(other, 2)[ACME] == (0.5, Source.OVERRIDE, "brands never matter")
    assert scorer.pairs == []


def test_overrides_apply_to_inline_items(make_engine, store):
    put(store, QUERY, "brand", "zorblax", 0.05, "zorblax is a counterfeit brand")
    put(store, QUERY, "color", "red", 0.1, "inline red too")
    engine, scorer = make_engine()
    inline = CatalogItem(item_id="x1", title="Zorblax red office chair", brand="Zorblax", color="Red")
    result = engine.score(QUERY, [ItemRequest("x1", inline)], explain=True)
    found = entities(result, 0)
    assert found[Entity.of("brand", "zorblax")] == (0.05, Source.OVERRIDE, "zorblax is a counterfeit brand")
    assert found[RED] == (0.1, Source.OVERRIDE, "inline red too")
    assert all(pair[1] not in (RED.render(), "brand: zorblax") for pair in scorer.pairs)


def test_a_query_without_overrides_is_untouched(make_engine, store):
    put(store, "something else", "color", "red", 0.0)
    engine, _ = make_engine()
    result = engine.score(QUERY, [ItemRequest("red-chair")], explain=True)
    assert {s for _, s, _ in entities(result, 0).values()} == {Source.CACHED}
    assert engine.overrides is not None and engine.overrides.current().for_query(QUERY) is None


def test_the_store_survives_reopening_in_another_process_and_counts_versions(store, tmp_path):
    assert store.version() == 0
    put(store, QUERY, "color", "red", 0.25, "first")
    put(store, QUERY, "color", "red", 0.75, "second")
    script = (
        "import sys; from entrel.overrides import OverrideStore; "
        "v, e = OverrideStore.open(sys.argv[1]).entries(); print(v, [(o.key.text, o.score, o.reason) for o in e])"
    )
    out = subprocess.run([sys.executable, "-c", script, str(store.path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2 [('red', 0.75, 'second')]"


def test_another_writer_is_picked_up_within_the_poll_interval(make_engine, store):
    engine, _ = make_engine(poll_interval_s=0.2)
    assert engine.score(QUERY, [ItemRequest("red-chair")]).items[0].score == pytest.approx(1.0)
    # Another process (a replica, or the CLI on the store) writes; this engine was not told.
    script = (
        "import sys; from entrel.overrides import OverrideStore, make_override, override_key; "
        "OverrideStore.open(sys.argv[1]).put(make_override(override_key('red office chair', 'color', 'red', 512), "
        "0.0, 'elsewhere', 'admin'))"
    )
    subprocess.run([sys.executable, "-c", script, str(store.path)], check=True)
    written = time.monotonic()
    while engine.score(QUERY, [ItemRequest("red-chair")]).items[0].score > 0.01:
        assert time.monotonic() - written < 1.0, "not picked up within 1 s"
        time.sleep(0.01)
    assert engine.overrides is not None and engine.overrides.current().version == 1


def test_every_change_is_audited(store):
    key = override_key(QUERY, "color", "red", 512)
    store.put(make_override(key, 0.3, "first", "admin"))
    store.put(make_override(key, 0.6, "second", "admin"))
    assert store.delete(key, "admin", "done") is not None
    assert store.delete(key, "admin", "again") is None, "nothing to delete: nothing written"
    lines = [json.loads(line) for line in store.audit_path.read_text().splitlines()]
    assert [(r["before"] and r["before"]["score"], r["after"] and r["after"]["score"], r["reason"]) for r in lines] == [
        (None, 0.3, "first"),
        (0.3, 0.6, "second"),
        (0.6, None, "done"),
    ]
    assert {r["principal"] for r in lines} == {"admin"} and all(r["time"].endswith("+00:00") for r in lines)
    assert lines[0]["after"]["key"] == {"query": QUERY, "type": "color", "text": "red"}
    assert store.version() == 3 and store.entries() == (3, [])


def test_the_nightly_drift_report_compares_each_override_with_fresh_scores():
    table = [CHAIR, RED, BLUE, ACME]
    overrides = [
        make_override(override_key(QUERY, "color", "red", 512), 0.0, "specific", "admin"),
        make_override(override_key("*", "brand", "acme", 512), 1.0, "every query", "admin"),
        make_override(override_key(QUERY, "color", "", 512), None, "colors ignored", "admin"),
        make_override(override_key(QUERY, "brand", "zorblax", 512), 0.2, "no such entity tonight", "admin"),
    ]
    drift = OverrideDrift(overrides, table)
    rows = [
        (QUERY, np.array([0, 1, 2, 3]), np.array([0.9, 0.8, 0.1, 0.4], dtype=np.float32)),
        ("office chair", np.array([1, 3]), np.array([0.5, 0.7], dtype=np.float32)),
    ]
    assert [q for q, _, _ in drift.tap(rows)] == [QUERY, "office chair"]
    by_reason = {r["reason"]: r for r in drift.report()}
    specific = by_reason["specific"]
    assert (specific["pairs_scored_tonight"], specific["model_score_mean"], specific["abs_difference_max"]) == (
        1,
        pytest.approx(0.8),
        pytest.approx(0.8),
    )
    star = by_reason["every query"]
    assert star["pairs_scored_tonight"] == 2 and star["abs_difference_mean"] == pytest.approx((0.6 + 0.3) / 2)
    ignored = by_reason["colors ignored"]  # red 0.8 and blue 0.1 against neutral
    assert (ignored["score"], ignored["pairs_scored_tonight"], ignored["abs_difference_max"]) == (
        "ignored (neutral)",
        2,
        pytest.approx(0.4),
    )
    assert by_reason["no such entity tonight"]["model_score_mean"] is None


def test_put_all_stores_many_in_one_transaction_each_audited(store):
    overrides = [make_override(override_key(f"query {k}", "color", "red", 512), k / 10, "bulk", "admin") for k in range(5)]
    assert store.put_all(overrides) == 5
    version, entries = store.entries()
    assert version == 5 and sorted(o.score for o in entries) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert len(store.audit()) == 5


def test_the_cli_explanation_shows_an_override_and_its_reason():
    response = pb.ScoreItemsResponse()
    item = response.items.add(item_id="D1", score=0.2, status=pb.ITEM_STATUS_OK, title="Red chair")
    item.entities.add(type="color", text="red", source=pb.SCORE_SOURCE_OVERRIDE, override_reason="recalled")
    assert "color         red                           0.000  ?             0.00  override +0.000  (override: recalled)" in (
        render_explanation("red chair", response)
    )
    assert "[override]" in render_ranking("red chair", response)
