"""RelevanceEngine with an in-memory snapshot, a scripted scorer and the real MicroBatcher: no model, milliseconds each.

The last test drives it through the gRPC servicer (without a server) for how requests are validated.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from fakes import ACME, BLUE, CHAIR, MESH, QUERY, RED, Engines, FixedEncoder, MemorySnapshot

from entrel.catalog import CatalogItem, Entity
from entrel.service.answers import ItemStatus, Role, Source
from entrel.service.batcher import Overloaded
from entrel.service.grpc_service import RelevanceServicer
from entrel.service.requests import Group, InvalidRequest, ItemRequest
from entrel.v1 import relevance_pb2 as pb

ITEMS = {
    "red-chair": ("Red office chair", [CHAIR, RED]),
    "blue-chair": ("Blue office chair", [CHAIR, BLUE]),
    "acme-chair": ("Acme office chair", [CHAIR, ACME]),
    "acme-mesh": ("Acme mesh", [ACME, MESH]),
    "bare": ("Something", []),
}
ROWS = {QUERY: {CHAIR: 1.0, RED: 1.0, BLUE: 0.0}}
# What the live "model" says about the pairs the snapshot lacks.
LIVE = {(QUERY, ACME.render()): 0.4, (QUERY, MESH.render()): 0.2}


@pytest.fixture
def make_engine():
    """Builds engines over a MemorySnapshot; closes their batchers (releasing held scorers) afterwards."""
    engines = Engines()

    def make(snapshot=None, served=True, encoder=None, overrides=()):
        served_snapshot = (snapshot or MemorySnapshot(ITEMS, ROWS)) if served else None
        return engines.make(served_snapshot, LIVE, overrides, encoder=encoder)

    yield make
    engines.close()


def requests(*item_ids):
    return [ItemRequest(i) for i in item_ids]


def test_cached_pairs_come_from_the_snapshot_without_scoring(make_engine):
    engine, scorer = make_engine()
    result = engine.score(QUERY, requests("red-chair", "blue-chair"), explain=True)
    red, blue = result.items
    assert [e.source for e in red.entities + blue.entities] == [Source.CACHED] * 4
    assert [e.score for e in red.entities] == [1.0, 1.0] and [e.score for e in blue.entities] == [1.0, 0.0]
    assert (red.status, blue.status) == (ItemStatus.OK, ItemStatus.OK)
    assert (red.title, red.entities[0].entity) == ("Red office chair", CHAIR)
    # Product t-norm: red covers the query and contradicts nothing; blue's color breaks the match.
    assert red.score == pytest.approx(1.0) and blue.score == pytest.approx(0.0)
    assert blue.entities[1].role == Role.CONTRADICTS and blue.entities[1].breaks_match
    assert (result.cache_hits, result.cache_misses, result.query_cached) == (4, 0, True)
    assert (result.snapshot_id, result.model_fingerprint) == ("memory", "scripted-scorer")
    assert scorer.pairs == []


def test_distinct_live_misses_are_scored_once(make_engine):
    engine, scorer = make_engine()
    result = engine.score(QUERY, requests("acme-chair", "acme-mesh", "acme-chair"), explain=True)
    # Four missed slots (acme in each item, mesh once), two distinct pairs.
    assert sorted(scorer.pairs) == sorted(LIVE)
    assert (result.cache_misses, result.live_scored_pairs, result.prior_pairs) == (4, 2, 0)
    acme_chair, acme_mesh, again = result.items
    assert [(e.entity, e.score, e.source) for e in acme_mesh.entities] == [
        (ACME, pytest.approx(0.4), Source.LIVE),
        (MESH, pytest.approx(0.2), Source.LIVE),
    ]
    assert acme_chair.entities[0].source == Source.CACHED and acme_chair.entities[1].source == Source.LIVE
    assert again == acme_chair
    assert {item.status for item in result.items} == {ItemStatus.OK}


def test_pairs_not_scored_by_the_deadline_get_the_prior(make_engine):
    engine, scorer = make_engine(overrides=["logic.prior=0.3"])
    scorer.gate.clear()  # the model never answers in time
    started = time.monotonic()
    result = engine.score(QUERY, requests("acme-chair", "red-chair"), explain=True, deadline=started + 0.05)
    assert time.monotonic() - started < 0.5
    late, cached = result.items
    assert late.status == ItemStatus.DEGRADED and late.message == "some entities got the prior score"
    acme = late.entities[1]
    assert (acme.source, acme.score, acme.note) == (Source.PRIOR, pytest.approx(0.3), "not scored within the request deadline")
    assert cached.status == ItemStatus.OK
    assert (result.live_scored_pairs, result.prior_pairs) == (0, 1)


def test_live_pairs_past_the_cap_get_the_prior(make_engine):
    engine, scorer = make_engine(overrides=["server.max_live_pairs_per_request=1"])
    result = engine.score(QUERY, requests("acme-mesh"), explain=True)
    assert len(scorer.pairs) == 1
    (item,) = result.items
    sources = sorted(e.source for e in item.entities)
    assert sources == [Source.LIVE, Source.PRIOR] and item.status == ItemStatus.DEGRADED
    assert [e.note for e in item.entities if e.source == Source.PRIOR] == ["over the live cap of 1 pairs per request"]
    assert (result.live_scored_pairs, result.prior_pairs) == (1, 1)


def test_a_row_table_reads_each_row_alone_and_padding_as_missing():
    """The per-thread table a group's slots are looked up in: nothing of one row is left for the next, it grows for
    ids past its size, and padding (-1) is never a hit."""
    from entrel.service.engine import _RowTable

    table = _RowTable()
    ids = np.array([[5, 1, -1], [2, 7, -1]], dtype=np.int32)
    first = (np.array([1, 5], dtype=np.uint32), np.array([0.9, 0.1], dtype=np.float32))
    second = (np.array([2, 40], dtype=np.uint32), np.array([0.7, 0.3], dtype=np.float32))
    nan = np.nan

    def read(row, rows):
        return np.array(rows, dtype=np.float32), table.scores(row, ids[: len(rows)], 8)

    np.testing.assert_array_equal(*read(first, [[0.1, 0.9, nan], [nan, nan, nan]]))
    np.testing.assert_array_equal(*read(second, [[nan, nan, nan], [0.7, nan, nan]]))
    np.testing.assert_array_equal(*read(first, [[0.1, 0.9, nan]]))
    assert np.isnan(table.table).all()


def test_unknown_and_empty_items_get_the_unjudged_score(make_engine):
    engine, scorer = make_engine(overrides=["logic.unjudged_score=0.05"])
    result = engine.score(QUERY, requests("nope", "bare", "red-chair"), explain=True)
    unknown, bare, red = result.items
    assert (unknown.status, unknown.score, unknown.message) == (
        ItemStatus.UNKNOWN_ITEM,
        pytest.approx(0.05),
        "item id not in the serving snapshot",
    )
    assert unknown.entities == [] and unknown.title == ""
    assert (bare.status, bare.score) == (ItemStatus.NO_ENTITIES, pytest.approx(0.05))
    assert red.status == ItemStatus.OK and scorer.pairs == []

    unserved, _ = make_engine(served=False, overrides=["logic.unjudged_score=0.05"])
    result = unserved.score(QUERY, requests("red-chair"))
    assert (result.snapshot_id, result.query_cached) == ("", False)
    assert (result.items[0].status, result.items[0].score) == (ItemStatus.UNKNOWN_ITEM, pytest.approx(0.05))
    assert result.items[0].message == "no snapshot is being served"


def test_similarity_term_blends_with_the_entity_score(make_engine):
    vectors = {"red-chair": [1, 0, 0, 0], "blue-chair": [0.6, 0.8, 0, 0], "acme-chair": [0, 0, 1, 0]}
    snapshot = MemorySnapshot(ITEMS, ROWS, item_vectors=vectors, query_vectors={QUERY: [1, 0, 0, 0]})
    encoder = FixedEncoder({"office chair": [0, 0, 1, 0]})
    engine, _ = make_engine(snapshot, encoder=encoder, overrides=["similarity.weight=0.25"])
    ids = ("red-chair", "blue-chair", "acme-chair", "nope")
    result = engine.score(QUERY, requests(*ids))
    assert result.similarity_weight == 0.25 and result.query_vector_cached and encoder.encoded == []
    assert [i.similarity for i in result.items] == pytest.approx([1.0, 0.6, 0.0, 0.0], abs=1e-3)
    for item in result.items[:3]:
        assert item.score == pytest.approx(0.75 * item.entity_score + 0.25 * item.similarity)
    assert result.items[3].score == 0.0  # unknown: unjudged, whatever the similarity
    # A query without a cached vector is encoded live, once.
    result = engine.score("office chair", requests(*ids))
    assert not result.query_vector_cached and encoder.encoded == ["office chair"]
    assert [i.similarity for i in result.items] == pytest.approx([0.0, 0.0, 1.0, 0.0], abs=1e-3)

    # Weight 0 (no encoder) or a snapshot without item vectors: the entity score alone.
    for engine, _ in (make_engine(snapshot), make_engine(encoder=encoder, overrides=["similarity.weight=0.25"])):
        result = engine.score(QUERY, requests(*ids))
        assert result.similarity_weight == 0.0
        assert [i.score for i in result.items] == [i.entity_score for i in result.items[:3]] + [0.0]
        assert all(i.similarity == 0.0 for i in result.items)


def test_results_keep_the_request_order(make_engine):
    engine, _ = make_engine()
    order = ["nope", "blue-chair", "acme-mesh", "red-chair", "bare", "acme-chair", "blue-chair"]
    result = engine.score(QUERY, requests(*order))
    assert [i.item_id for i in result.items] == order
    alone = [engine.score(QUERY, requests(i)).items[0] for i in order]
    assert [(i.score, i.status) for i in result.items] == [(i.score, i.status) for i in alone]
    # Every item but the repeated one differs in score or status, so a shuffle would show.
    assert len({(i.score, i.status) for i in result.items}) == 6


class Aborted(Exception):
    """What grpc's context.abort raises, with the status and message the client would see."""


class FakeContext:
    def time_remaining(self) -> None:
        return None

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


def test_the_servicer_validates_a_request_once(make_engine, monkeypatch):
    engine, _ = make_engine()
    seen = []
    validate = engine.validate
    monkeypatch.setattr(engine, "validate", lambda query, n: seen.append(query) or validate(query, n))
    servicer = RelevanceServicer(engine)
    request = pb.ScoreItemsRequest(query="Red  Office CHAIR", items=[pb.ItemRef(item_id="red-chair")])
    response = pb.ScoreItemsResponse.FromString(servicer.ScoreItems(request, FakeContext()))
    assert seen == ["Red  Office CHAIR"]
    assert response.metadata.normalized_query == QUERY and response.items[0].score == pytest.approx(1.0)
    # Still checked before the items are read: a bad query is named, not the item that has no reference.
    with pytest.raises(Aborted) as caught:
        servicer.ScoreItems(pb.ScoreItemsRequest(query="   ", items=[pb.ItemRef()]), FakeContext())
    assert caught.value.args == (grpc.StatusCode.INVALID_ARGUMENT, "query is empty (nothing left after normalisation)")


def test_a_batch_answers_each_group_as_alone_with_one_live_submission(make_engine):
    engine, scorer = make_engine()
    groups = [
        Group(QUERY, requests("acme-chair", "red-chair", "nope")),
        Group("acme mesh", requests("acme-mesh", "blue-chair"), explain=True),
        Group(QUERY, requests("acme-mesh")),
    ]
    together = engine.score_batch(groups)
    # Every group's misses went to the model in one batch; the pair two groups share was scored once.
    assert len(scorer.batches) == 1 and len(scorer.pairs) == len(set(scorer.pairs)) == 2 + 4
    alone = [engine.score(g.query, g.items, g.explain) for g in groups]
    for batched, single in zip(together, alone, strict=True):
        assert [(i.item_id, i.score, i.status, i.entities) for i in batched.items] == [
            (i.item_id, i.score, i.status, i.entities) for i in single.items
        ]
        assert (batched.normalized_query, batched.cache_hits, batched.cache_misses, batched.live_scored_pairs) == (
            single.normalized_query,
            single.cache_hits,
            single.cache_misses,
            single.live_scored_pairs,
        )
    assert together[1].items[0].entities is not None and together[0].items[0].entities is None


def test_a_batch_past_its_limits_or_with_a_bad_group_is_refused_whole(make_engine):
    engine, scorer = make_engine(overrides=["server.max_batch_groups=2", "server.max_batch_items=3", "server.max_items=2"])
    one = requests("red-chair")
    cases = [
        ([Group(QUERY, one)] * 3, "3 groups; the limit is server.max_batch_groups=2"),
        ([Group(QUERY, one), Group(QUERY, requests("red-chair", "acme-chair", "blue-chair"))], "server.max_batch_items=3"),
        ([Group(QUERY, one), Group(" \u200b", one)], "groups[1]: query is empty"),
        ([Group(QUERY, requests("red-chair", "acme-chair", "blue-chair"))], "groups[0]: 3 items requested"),
    ]
    for groups, message in cases:
        with pytest.raises(InvalidRequest) as caught:
            engine.score_batch(groups)
        assert message in str(caught.value)
    assert scorer.pairs == []
    servicer = RelevanceServicer(engine)
    request = pb.ScoreBatchRequest(
        groups=[pb.ScoreItemsRequest(query=QUERY, items=[pb.ItemRef(item_id="acme-chair")]), pb.ScoreItemsRequest(query="")]
    )
    with pytest.raises(Aborted) as aborted:
        servicer.ScoreBatch(request, FakeContext())
    assert aborted.value.args[0] == grpc.StatusCode.INVALID_ARGUMENT and "groups[1]" in aborted.value.args[1]
    assert scorer.pairs == [], "nothing scored for a refused batch"


def test_inline_requests_past_the_slots_are_refused_before_their_items_are_checked(make_engine):
    """Under an inline flood a refused request costs no reading; an invalid one does not keep the slot."""
    import threading

    engine, scorer = make_engine(overrides=["server.max_inline_requests=1"])
    fits = [ItemRequest("x1", CatalogItem(item_id="x1", title="Zorblax mesh office chair", brand="Zorblax"))]
    too_long = [ItemRequest("x2", CatalogItem(item_id="x2", title="chair " * 1000))]
    scorer.gate.clear()  # the first inline request holds the only slot while its live pairs wait
    holder = threading.Thread(target=engine.score, args=(QUERY, fits))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # until the holder has the slot: before, the long title is refused for its length
            try:
                engine.score(QUERY, too_long)
            except Overloaded as refused:
                assert "max_inline_requests" in str(refused)
                break
            except InvalidRequest:
                assert time.monotonic() < deadline, "the holder never took the slot"
                time.sleep(0.01)
        with pytest.raises(Overloaded):
            engine.score_batch([Group(QUERY, requests("red-chair")), Group(QUERY, too_long)])
        assert engine.score(QUERY, requests("red-chair")).items[0].score > 0, "cached requests take no slot"
    finally:
        scorer.gate.set()
        holder.join(60)
    with pytest.raises(InvalidRequest, match="max_inline_title_chars"):
        engine.score(QUERY, too_long)
    with pytest.raises(InvalidRequest, match=r"groups\[1\]: .*max_inline_title_chars"):
        engine.score_batch([Group(QUERY, requests("red-chair")), Group(QUERY, too_long)])
    # Overloaded here would mean a refusal kept the only slot.
    assert [item.item_id for item in engine.score(QUERY, fits).items] == ["x1"]


class InlineEncoder(FixedEncoder):
    """Encodes every inline text as the first axis and records the texts it encoded."""

    def __init__(self) -> None:
        super().__init__({})
        self.inline_texts: list[str] = []

    def encode_by(self, texts, until):
        self.inline_texts.extend(texts)
        return np.tile(np.array([[1, 0, 0, 0]], dtype=np.float16), (len(texts), 1))


class EntityTextEncoder(FixedEncoder):
    """Encodes each text to a given vector (the last axis for any other) and records the texts it encoded."""

    def __init__(self, vectors) -> None:
        super().__init__({})
        self.vectors = vectors
        self.inline_texts: list[str] = []

    def vector(self, text):
        return self.vectors.get(text, [0, 0, 0, 1])

    def encode_by(self, texts, until):
        self.inline_texts.extend(texts)
        return np.array([self.vector(t) for t in texts], dtype=np.float16).reshape(len(texts), 4)


def test_inline_items_get_bags_of_their_entity_vectors_when_the_snapshot_holds_bags(make_engine):
    """similarity.source = "entities", said by the snapshot: an inline item's vector is the bag of its entity
    texts' vectors, also in a later group of a batch (rows offset by the groups before it)."""
    rows = {QUERY: {**ROWS[QUERY], Entity.of("product_type", "chair"): 1.0, Entity.of("phrase", "office"): 0.5}}
    query = np.array([0.6, 0.8, 0, 0])
    encoder = EntityTextEncoder({"red": [1, 0, 0, 0], "chair": [0, 1, 0, 0], "office": [0, 0.6, 0.8, 0]})
    snapshot = MemorySnapshot(
        ITEMS, rows, item_vectors={i: [0, 0, 1, 0] for i in ITEMS}, query_vectors={QUERY: query}, similarity_source="entities"
    )
    engine, _ = make_engine(snapshot, encoder=encoder, overrides=["similarity.weight=0.5"])
    inline = ItemRequest("x", CatalogItem(item_id="x", title="Red office chair"))
    engine.score(QUERY, [ItemRequest("x0", CatalogItem(item_id="x0", title="warm up"))])  # extraction workers start
    encoder.inline_texts.clear()
    first, second = engine.score_batch([Group(QUERY, requests("red-chair", "blue-chair")), Group(QUERY, [inline], explain=True)])
    assert [i.similarity for i in first.items] == [0.0, 0.0], "catalog items keep the snapshot's vectors"
    (item,) = second.items
    texts = [e.entity.text for e in item.entities]
    assert texts and sorted(encoder.inline_texts) == sorted(set(texts)), "each entity text encoded once"
    bag = np.sum([encoder.vector(t) for t in texts], axis=0, dtype=np.float32)
    assert item.similarity == pytest.approx(float(query @ bag / np.linalg.norm(bag)), abs=2e-3)
    # A snapshot of text vectors: the same inline item is encoded from its text.
    encoder.inline_texts.clear()
    texts_snapshot = MemorySnapshot(ITEMS, rows, item_vectors={i: [0, 0, 1, 0] for i in ITEMS}, query_vectors={QUERY: query})
    by_text, _ = make_engine(texts_snapshot, encoder=encoder, overrides=["similarity.weight=0.5"])
    by_text.score(QUERY, [ItemRequest("x0", CatalogItem(item_id="x0", title="warm up"))])
    encoder.inline_texts.clear()
    by_text.score(QUERY, [inline])
    assert encoder.inline_texts == ["Red office chair"]


def test_only_a_request_alone_with_its_inline_items_encodes_their_texts(make_engine):
    """Encoding inline texts is the dearest step left: beside another inline request in flight, the items
    are scored by their entities alone and say so."""
    import threading

    # Every entity extracted from the item beside is cached, so it never waits for the held scorer.
    rows = {QUERY: {**ROWS[QUERY], Entity.of("product_type", "chair"): 1.0, Entity.of("phrase", "office"): 0.5}}
    snapshot = MemorySnapshot(ITEMS, rows, item_vectors={"red-chair": [1, 0, 0, 0]}, query_vectors={QUERY: [1, 0, 0, 0]})
    encoder = InlineEncoder()
    engine, scorer = make_engine(snapshot, encoder=encoder, overrides=["similarity.weight=0.25", "server.max_inline_requests=2"])
    held = [ItemRequest("x1", CatalogItem(item_id="x1", title="Zorblax mesh office chair", brand="Zorblax"))]
    beside = [ItemRequest("x2", CatalogItem(item_id="x2", title="Red office chair"))]
    engine.score(QUERY, [ItemRequest("x0", CatalogItem(item_id="x0", title="warm up"))])  # extraction workers start
    alone = engine.score(QUERY, beside).items[0]
    assert encoder.inline_texts == ["Red office chair"] and alone.status == ItemStatus.OK
    assert alone.similarity == pytest.approx(1.0, abs=1e-3)
    scorer.gate.clear()  # the held request keeps its slot while its live pairs wait
    holder = threading.Thread(target=engine.score, args=(QUERY, held))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # until the holder has its slot: before, the request is alone and encodes
            encoder.inline_texts.clear()
            item = engine.score(QUERY, beside, deadline=time.monotonic() + 10).items[0]
            if not encoder.inline_texts:
                break
            assert time.monotonic() < deadline, "the holder never took its slot"
            time.sleep(0.01)
        assert (item.status, item.similarity) == (ItemStatus.DEGRADED, 0.0)
        assert "scored by its entities alone" in item.message
    finally:
        scorer.gate.set()
        holder.join(60)


EXCLUDING_QUERY = "office chair without wheels"
EXCLUDING_ITEMS = {
    **ITEMS,
    "wheeled": ("Office chair with wheels", ITEMS["red-chair"][1]),
    "wheel-free": ("Office chair, no wheels", ITEMS["red-chair"][1]),
}
EXCLUDING_ROWS = {**ROWS, EXCLUDING_QUERY: ROWS[QUERY]}


def test_the_engine_multiplies_an_excluded_items_score_and_says_why(make_engine):
    engine, _ = make_engine(MemorySnapshot(EXCLUDING_ITEMS, EXCLUDING_ROWS), overrides=["exclusion.penalty=0.4"])
    result = engine.score(EXCLUDING_QUERY, requests("wheeled", "wheel-free"), explain=False)
    wheeled, wheel_free = result.items
    assert result.exclusion_penalty == pytest.approx(0.4)
    assert (wheeled.excluded, wheel_free.excluded) == ("wheel", "")
    # Same entities and scores: only the exclusion tells them apart.
    assert wheel_free.score > 0 and wheeled.score == pytest.approx(0.6 * wheel_free.score)
    off, _ = make_engine(MemorySnapshot(EXCLUDING_ITEMS, EXCLUDING_ROWS), overrides=["exclusion.penalty=0"])
    unpenalised = off.score(EXCLUDING_QUERY, requests("wheeled", "wheel-free")).items
    assert [i.excluded for i in unpenalised] == ["", ""] and unpenalised[0].score == pytest.approx(unpenalised[1].score)


def test_exclusions_can_be_read_in_entity_texts_instead_of_titles(make_engine):
    casters = Entity.of("phrase", "caster wheels")
    items = {**EXCLUDING_ITEMS, "casters": ("Office chair", [CHAIR, RED, casters])}
    snapshot = MemorySnapshot(items, {EXCLUDING_QUERY: {**ROWS[QUERY], casters: 0.5}})
    by_title, _ = make_engine(snapshot, overrides=["exclusion.penalty=0.4"])
    by_entities, _ = make_engine(snapshot, overrides=["exclusion.penalty=0.4", "exclusion.reads=entities"])
    ids = requests("wheeled", "casters", "wheel-free")
    assert [i.excluded for i in by_title.score(EXCLUDING_QUERY, ids).items] == ["wheel", "", ""]
    wheeled, with_casters, wheel_free = by_entities.score(EXCLUDING_QUERY, ids).items
    # "with wheels" is only in the title; the casters' wheels are an entity the title does not name.
    assert (wheeled.excluded, with_casters.excluded, wheel_free.excluded) == ("", "wheel", "")
    assert with_casters.score == pytest.approx(0.6 * with_casters.entity_score)


def test_a_mixed_batch_is_one_pass_and_each_group_is_answered_exactly_as_alone(make_engine):
    """Groups of different widths, explained or not, with an exclusion, the similarity term, unknown and
    empty items, a repeated query: stacked into one matrix, every field of every item is what the group
    alone gets, and the server's encoded response is the one built message by message."""
    from entrel.service.grpc_service import _add_items, batch_response_bytes, response_bytes
    from entrel.service.wire import varint

    def to_response(result):
        return pb.ScoreItemsResponse.FromString(response_bytes(result))

    vectors = {item_id: [0, 0, 0, 1] for item_id in EXCLUDING_ITEMS}
    vectors |= {
        "red-chair": [1, 0, 0, 0],
        "blue-chair": [-0.6, 0.8, 0, 0],  # a negative cosine with QUERY: unrelated, similarity 0
        "wheeled": [0, 0, 1, 0],
        "wheel-free": [0, 0.6, 0.8, 0],
    }
    snapshot = MemorySnapshot(EXCLUDING_ITEMS, EXCLUDING_ROWS, item_vectors=vectors, query_vectors={QUERY: [1, 0, 0, 0]})
    encoder = FixedEncoder({EXCLUDING_QUERY: [0, 0, 1, 0], "acme mesh": [0, 1, 0, 0]})
    engine, _ = make_engine(snapshot, encoder=encoder, overrides=["similarity.weight=0.25", "exclusion.penalty=0.4"])
    groups = [
        Group(QUERY, requests("red-chair", "nope", "bare", "blue-chair")),
        Group(EXCLUDING_QUERY, requests("wheeled", "wheel-free", "acme-mesh")),
        Group("acme mesh", requests("acme-mesh", "blue-chair"), explain=True),
        Group(QUERY, requests()),
        Group(QUERY, requests("acme-chair", "red-chair"), explain=True),
        Group(EXCLUDING_QUERY, requests("wheel-free")),
    ]
    together = engine.score_batch(groups)
    alone = [engine.score(g.query, g.items, g.explain) for g in groups]
    for batched, single in zip(together, alone, strict=True):
        assert batched.items == single.items
        for field in ("normalized_query", "query_cached", "cache_hits", "cache_misses", "similarity_weight"):
            assert getattr(batched, field) == getattr(single, field), field
        built = pb.ScoreItemsResponse()
        _add_items(built, batched)
        assert to_response(batched).items == built.items
    wheeled, wheel_free, _ = together[1].items
    assert (wheeled.excluded, wheel_free.excluded) == ("wheel", "") and wheeled.similarity == pytest.approx(1.0)
    assert [i.status for i in together[0].items] == [
        ItemStatus.OK,
        ItemStatus.UNKNOWN_ITEM,
        ItemStatus.NO_ENTITIES,
        ItemStatus.OK,
    ]
    assert together[2].items[0].entities and together[0].items[0].entities is None and together[3].items == []
    # The unexplained answers are encoded from their columns; their ItemResults were never built.
    fresh = engine.score_batch(groups)
    assert [r.columns is not None and r._items is None for r in fresh] == [True] * len(groups)
    assert [to_response(r).items for r in fresh] == [to_response(r).items for r in together]
    # The batch response encodes its unexplained groups in one pass; byte for byte it is each group's own
    # response (metadata too), framed as field 1.
    assert batch_response_bytes(fresh) == b"".join(b"\x0a" + varint(len(g)) + g for g in map(response_bytes, fresh))
    batch = pb.ScoreBatchResponse.FromString(batch_response_bytes(fresh))
    assert list(batch.groups) == [to_response(r) for r in fresh]
    assert [g.metadata.normalized_query for g in batch.groups] == [r.normalized_query for r in fresh]
    assert batch.groups[0].metadata.cache_hits == fresh[0].cache_hits > 0 and batch.groups[0].metadata.snapshot_id == "memory"
    assert together[0].items[3].similarity == 0.0 and together[2].items[1].similarity == pytest.approx(0.8, abs=1e-3)
    # Answers of separate calls keep their own message tables (an engine without a snapshot words an unknown
    # item otherwise): encoded in one pass, each is still its own response, messages included.
    unserved, _ = make_engine(served=False)
    mixed = [fresh[0], unserved.score(QUERY, requests("nope", "red-chair")), *engine.score_batch(groups[:1])]
    assert mixed[0].columns.message_texts != mixed[1].columns.message_texts
    assert batch_response_bytes(mixed) == b"".join(b"\x0a" + varint(len(g)) + g for g in map(response_bytes, mixed))
    assert [i.message for g in pb.ScoreBatchResponse.FromString(batch_response_bytes(mixed)).groups for i in g.items][4:6] == [
        i.message for i in mixed[1].items
    ]


def test_entity_type_weights_reach_the_served_aggregate_and_its_explanation(make_engine):
    """A weight of 0 on colours ignores their contradictions: the blue chair then fits a query for a red one."""
    plain, _ = make_engine()
    weighted, _ = make_engine(overrides=["logic.type_weights.color=0"])
    assert plain.score(QUERY, requests("blue-chair")).items[0].entity_score == pytest.approx(0.0)
    blue = weighted.score(QUERY, requests("blue-chair"), explain=True).items[0]
    assert blue.entity_score == pytest.approx(1.0)
    assert {(e.entity.type.value, e.weight) for e in blue.entities} == {("product_type", 1.0), ("color", 0.0)}
