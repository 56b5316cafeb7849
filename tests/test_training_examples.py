"""Training examples: what each stage of the entity model learns from."""

from __future__ import annotations

from entrel.catalog import Entity
from offline.training.examples import ITEM_TARGETS, Label, item_examples, label_entity_examples, synthetic_entity_examples

CHAIR = Entity.of("product_type", "office chair")
DESK = Entity.of("product_type", "desk")
RED, BLUE = Entity.of("color", "red"), Entity.of("color", "blue")
ACME = Entity.of("brand", "acme")
ENTITIES = {"exact": [CHAIR, RED, ACME], "blue": [CHAIR, BLUE, ACME], "desk": [DESK, RED], "bare": []}


def test_label_pairs_fit_exact_entities_and_blame_only_irrelevant_ones():
    labels = [
        Label("Red Office Chair", "exact", 3),
        Label("Red Office Chair", "blue", 2),
        Label("Red Office Chair", "desk", 0),
        Label("Red Office Chair", "bare", 0),
    ]
    targets = {ex.texts: ex.target for ex in label_entity_examples(labels, ENTITIES)}
    assert targets == {
        (CHAIR.render(),): 1.0,
        (RED.render(),): 1.0,  # on the desk too, but an exact item has it
        (ACME.render(),): 1.0,
        (DESK.render(),): 0.0,  # only ever on irrelevant items
        # blue: only on a substitute, so neither fits nor breaks for sure
    }
    assert {ex.query for ex in label_entity_examples(labels, ENTITIES)} == {"red office chair"}


def test_item_examples_carry_every_entity_and_the_grade_target():
    examples = item_examples([Label("red chair", "blue", 2), Label("red chair", "bare", 3)], ENTITIES)
    assert len(examples) == 1, "an item without entities has nothing to train"
    assert examples[0].texts == tuple(e.render() for e in ENTITIES["blue"]) and examples[0].target == ITEM_TARGETS[2]


def test_synthetic_pairs_contradict_stated_types_only():
    examples = synthetic_entity_examples([ENTITIES["exact"], ENTITIES["blue"], ENTITIES["desk"]], 50, seed=3)
    assert examples and {ex.target for ex in examples} == {0.0, 1.0}
    for ex in examples:
        _, _, text = ex.texts[0].partition(": ")
        if ex.target == 0.0:  # another value of a type the query states
            assert text not in ex.query, ex


def test_training_twice_on_the_same_data_gives_the_same_model(tmp_path, small_data):
    """Every random draw is seeded, the fresh head included: a retrain reproduces the fingerprint."""
    import polars as pl

    from entrel.config import load_settings
    from offline import train

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
