"""T-norm axioms and the aggregator's explanations, on numpy and torch alike."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from entrel.logic import PAD, TNORMS, Aggregator, tnorm

unit = st.floats(0.0, 1.0, allow_nan=False, width=32)
rows = arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=unit)


@pytest.mark.parametrize("name", sorted(TNORMS))
@settings(max_examples=200, deadline=None)
@given(a=rows, b=st.data())
def test_tnorm_axioms(name, a, b):
    t = tnorm(name)
    other = b.draw(arrays(np.float32, a.shape, elements=unit))
    # boundary: 1 is the identity, so padding changes nothing
    padded = np.concatenate([a, np.full((a.shape[0], 3), PAD, np.float32)], axis=1)
    np.testing.assert_allclose(t(padded), t(a), atol=1e-6)
    # commutative: order of entities does not matter
    np.testing.assert_allclose(t(a[:, ::-1]), t(a), atol=1e-6)
    # monotone: raising any entity never lowers the item
    assert np.all(t(np.maximum(a, other)) >= t(a) - 1e-6)
    # bounded by the worst entity, and 0 absorbs
    assert np.all(t(a) <= a.min(axis=1) + 1e-6)
    zeroed = a.copy()
    zeroed[:, 0] = 0.0
    np.testing.assert_allclose(t(zeroed), 0.0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TNORMS))
def test_tnorm_associative(name):
    t = tnorm(name)
    rng = np.random.default_rng(0)
    a, b, c = rng.random((3, 50, 1)).astype(np.float32)
    left = t(np.concatenate([t(np.concatenate([a, b], 1))[:, None], c], 1))
    right = t(np.concatenate([a, t(np.concatenate([b, c], 1))[:, None]], 1))
    np.testing.assert_allclose(left, right, atol=1e-6)


def test_known_values_and_torch_parity():
    s = np.array([[0.9, 0.5, 1.0], [0.2, 0.3, 1.0]], dtype=np.float32)
    expected = {"product": [0.45, 0.06], "min": [0.5, 0.2], "lukasiewicz": [0.4, 0.0]}
    for name, values in expected.items():
        np.testing.assert_allclose(tnorm(name)(s), values, atol=1e-6)
        tensor = torch.tensor(s, requires_grad=True)
        out = tnorm(name)(tensor)
        np.testing.assert_allclose(out.detach().numpy(), values, atol=1e-6)
        out.sum().backward()  # differentiable for training
        assert tensor.grad is not None


def test_unknown_tnorm_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown t-norm 'max'"):
        tnorm("max")


def test_aggregator_flags_the_entity_that_breaks_the_match():
    agg = Aggregator("product", prior=0.5, match_threshold=0.5)
    scores = np.array([[0.97, 0.08, 0.95], [0.9, 0.95, PAD], [PAD, PAD, PAD]], dtype=np.float32)
    out = agg(scores, np.array([3, 2, 0]), explain=True)
    np.testing.assert_allclose(out.scores, [0.97 * 0.08 * 0.95, 0.9 * 0.95, 0.5], rtol=1e-5)
    assert out.breaker.tolist() == [1, -1, -1]
    assert out.empty.tolist() == [False, False, True]
    # lift: how much the item would gain if that entity fitted perfectly
    np.testing.assert_allclose(out.lift[0, 1], 0.97 * 0.95 - out.scores[0], rtol=1e-5)
    assert out.lift[2].tolist() == [0.0, 0.0, 0.0]
    assert agg(scores, np.array([3, 2, 0])).lift is None


@pytest.mark.parametrize("name", sorted(TNORMS))
def test_item_without_entities_gets_the_prior_not_a_vacuous_one(name):
    out = Aggregator(name, prior=0.3, match_threshold=0.5)(np.ones((2, 0), np.float32), np.array([0, 0]), explain=True)
    assert out.scores.tolist() == pytest.approx([0.3, 0.3])
    assert out.empty.all()
