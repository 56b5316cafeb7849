"""Training through the soft-logic aggregate weighs each entity by its type, as serving does."""

import pytest
import torch

from entrel.catalog import Entity, EntityType
from entrel.logic import Aggregator, Weights
from entrel.offline.training.examples import item_example
from entrel.offline.training.trainer import _aggregate, trainable_cross_encoder

CHAIR = Entity(EntityType.PRODUCT_TYPE, "office chair")
BLUE = Entity(EntityType.COLOR, "blue")


def _item_scores(encoder, aggregator, examples) -> list[float]:
    with torch.no_grad():
        return _aggregate(encoder.model, encoder.processor, examples, aggregator, 64).tolist()


def test_a_type_weighted_zero_is_ignored_in_training_as_in_serving(trained_model):
    encoder = trainable_cross_encoder(trained_model, 64, seed=13)
    encoder.model.eval()
    blind_to_color = Aggregator("product", prior=0.0, match_threshold=0.5, weights=Weights(1.0, {"color": 0.0}))
    both = item_example("red office chair", [CHAIR, BLUE], 1.0)
    chair_only = item_example("red office chair", [CHAIR], 1.0)
    weighed, alone = _item_scores(encoder, blind_to_color, [both, chair_only])
    assert weighed == pytest.approx(alone, abs=1e-5), "color weighs 0: the blue entity must change nothing"
    untyped = both.__class__(both.query, both.texts, both.target, both.group)  # no types: every entity weighs 1
    (counted,) = _item_scores(encoder, blind_to_color, [untyped])
    assert counted < weighed, "the test model reads blue as contradicting a red chair; weighed 1 it lowers the item"
