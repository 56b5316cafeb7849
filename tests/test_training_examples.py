"""Training examples: what each stage of the entity model learns from."""

from __future__ import annotations

from entrel.catalog import Entity
from entrel.offline.training.examples import (
    CONTRADICT,
    ITEM_TARGETS,
    MATCH,
    NEUTRAL,
    SUBSTITUTE,
    Label,
    item_examples,
    label_entity_examples,
    product_type_outcome,
    pseudo_queries,
    synthetic_entity_examples,
    words,
)

CHAIR = Entity.of("product_type", "office chair")
DESK = Entity.of("product_type", "desk")
RED, BLUE = Entity.of("color", "red"), Entity.of("color", "blue")
ACME = Entity.of("brand", "acme")
MAT = Entity.of("product_type", "chair mat")
ENTITIES = {"exact": [CHAIR, RED, ACME], "blue": [CHAIR, BLUE, ACME], "desk": [DESK, RED], "mat": [MAT], "bare": []}


def test_label_pairs_read_outcomes_off_graded_items():
    labels = [
        Label("Red Office Chair", "exact", 3),
        Label("Red Office Chair", "blue", 2),
        Label("Red Office Chair", "desk", 0),
        Label("Red Office Chair", "mat", 1),
        Label("Red Office Chair", "bare", 0),
    ]
    targets = {ex.texts: ex.target for ex in label_entity_examples(labels, ENTITIES)}
    assert targets == {
        (CHAIR.render(),): MATCH,  # the query names it
        (RED.render(),): MATCH,  # on the desk too, but an exact item has it and the query names it
        (ACME.render(),): NEUTRAL,  # on an exact item, the query says nothing about it
        (DESK.render(),): CONTRADICT,  # product type of an irrelevant item
        (MAT.render(),): CONTRADICT,  # a complement (accessory) is not what the query asks for
        # blue: only on a substitute, so neither fits nor breaks for sure
    }
    assert {ex.query for ex in label_entity_examples(labels, ENTITIES)} == {"red office chair"}


def test_item_examples_carry_every_entity_and_the_grade_target():
    examples = item_examples([Label("red chair", "blue", 2), Label("red chair", "bare", 3)], ENTITIES)
    assert len(examples) == 1, "an item without entities has nothing to train"
    assert examples[0].texts == tuple(e.render() for e in ENTITIES["blue"]) and examples[0].target == ITEM_TARGETS[2]
    assert examples[0].types == tuple(e.type.value for e in ENTITIES["blue"]), "type weights need each text's type"


def test_synthetic_pairs_match_what_the_query_states_and_contradict_other_values_of_it():
    examples = synthetic_entity_examples([ENTITIES[k] for k in ("exact", "blue", "desk", "mat")], 80, seed=3)
    assert {ex.target for ex in examples} >= {MATCH, NEUTRAL, CONTRADICT}
    for ex in examples:
        kind, _, text = ex.texts[0].partition(": ")
        query_words = set(words(ex.query))
        if ex.target == MATCH:  # stated, or a more specific type of a stated product type
            assert set(words(text)) <= query_words or (kind == "product type" and words(text)[-1] in query_words), ex
        if ex.target == CONTRADICT:  # another value of a type the query states
            assert not set(words(text)) <= query_words, ex
        if ex.texts[0] == MAT.render() and "office chair" in ex.query:
            assert ex.target == CONTRADICT, "an accessory's type contradicts the main product's"


def test_pseudo_queries_state_their_items_entities_distinct_and_seeded():
    items = [ENTITIES[k] for k in ("exact", "blue", "desk", "mat", "bare")]
    queries = pseudo_queries(items, 8, seed=5)
    assert queries == pseudo_queries(items, 8, seed=5), "seeded: the same catalog gives the same queries"
    assert len(queries) == len(set(queries)) and 1 < len(queries) <= 8
    entity_words = [set(words(e.text)) for e in (CHAIR, DESK, RED, BLUE, ACME, MAT)] + [{"chair"}, {"mat"}]
    for query in queries:  # only what the catalog's items state: product types (or their heads), colours, brands
        assert set(words(query)) <= set().union(*entity_words), query
        assert any(ws <= set(words(query)) for ws in entity_words), query
    assert pseudo_queries([ENTITIES["bare"]], 5) == [], "an item with nothing to state gives no query"


def test_product_types_compare_by_their_head():
    assert product_type_outcome("office chair", "chair mat") == CONTRADICT
    assert product_type_outcome("chair", "office chair") == MATCH
    assert product_type_outcome("office chair", "gaming chair") == SUBSTITUTE
    assert product_type_outcome("office chair", "chair") == NEUTRAL
    assert product_type_outcome("sprayer", "guitar clamp") == CONTRADICT


def test_training_twice_on_the_same_data_gives_the_same_model(tmp_path, small_data):
    """Every random draw is seeded, the fresh head included: a retrain reproduces the fingerprint."""
    import polars as pl

    from entrel.config import load_settings
    from entrel.offline import train

    labels = tmp_path / "labels.csv"
    pl.read_csv(small_data["labels"]).head(40).write_csv(labels)
    settings = load_settings(
        overrides=[
            f"catalog.path={small_data['catalog']}",
            f"train.labels={labels}",
            "train.synthetic_queries=16",
        ]
    )
    first = train.run(settings, output=str(tmp_path / "a"), progress=False)
    second = train.run(settings, output=str(tmp_path / "b"), progress=False)
    assert first.fingerprint == second.fingerprint
