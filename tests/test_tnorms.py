"""T-norm axioms and the aggregator's explanations, on numpy and torch alike."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from entrel.logic import COVERAGES, NEUTRAL, PAD, TNORMS, Aggregator, Weights, tnorm

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


def test_aggregator_flags_the_entity_that_breaks_the_match_and_the_one_that_covers():
    agg = Aggregator("product", prior=0.5, match_threshold=0.5)
    scores = np.array([[0.95, 0.1, 0.5], [0.9, 0.5, NEUTRAL], [NEUTRAL] * 3], dtype=np.float32)
    out = agg(scores, np.array([3, 2, 0]), explain=True)
    covered = 0.1 + 0.9 * 0.9  # floor + (1 - floor) * match degree of 0.95
    np.testing.assert_allclose(out.scores, [covered * (1 - 0.8), 0.1 + 0.9 * 0.8, 0.5], rtol=1e-5)
    assert out.breaker.tolist() == [1, -1, -1]
    assert out.cover.tolist() == [0, 0, -1]
    assert out.empty.tolist() == [False, False, True]
    # lift: how much the item would gain if that entity's contradiction were lifted
    np.testing.assert_allclose(out.lift[0, 1], covered - out.scores[0], rtol=1e-5)
    assert out.lift[0, 0] == pytest.approx(0.0) and out.lift[2].tolist() == [0.0, 0.0, 0.0]
    assert agg(scores, np.array([3, 2, 0])).lift is None


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
    st.lists(st.floats(0.5, 1.0), min_size=1, max_size=6),
    st.sampled_from(sorted(TNORMS)),
    st.sampled_from(COVERAGES),
)
def test_entities_that_contradict_nothing_never_lower_an_item(base, extra, name, coverage):
    """A well-described item is not ranked below a sparse one for having more neutral or matching entities."""
    agg = Aggregator(name, prior=0.5, match_threshold=0.5, coverage=coverage)
    row = np.full((2, len(base) + len(extra)), NEUTRAL, dtype=np.float32)
    row[0, : len(base)] = base
    row[1, : len(base)] = base
    row[1, len(base) :] = extra
    out = agg(row, np.array([len(base), len(base) + len(extra)]))
    assert out.scores[1] >= out.scores[0] - 1e-6


def test_neutral_entities_change_nothing_and_weight_zero_ignores_a_type():
    agg = Aggregator("product", prior=0.5, match_threshold=0.5)
    sparse = np.array([[0.9, 0.2, NEUTRAL, NEUTRAL]], dtype=np.float32)
    described = np.array([[0.9, 0.2, 0.5, 0.52]], dtype=np.float32)
    assert agg(described, np.array([4])).scores[0] == pytest.approx(agg(sparse, np.array([2])).scores[0])
    ignored = Aggregator("product", prior=0.5, match_threshold=0.5, weights=Weights(1.0, {"color": 0.0}))
    weights = np.array([[1.0, 0.0, 1.0, 1.0]], dtype=np.float32)
    assert ignored(sparse, np.array([2]), weights).scores[0] == pytest.approx(0.1 + 0.9 * 0.8)


def test_an_item_that_covers_nothing_ranks_below_one_that_covers_the_query():
    """Unrelated entities that contradict nothing do not make an item fit: coverage is required."""
    agg = Aggregator("product", prior=0.5, match_threshold=0.5)
    rows = np.array([[0.5, 0.55, 0.5], [0.95, 0.4, 0.5]], dtype=np.float32)
    unrelated, fitting = agg(rows, np.array([3, 3])).scores
    assert fitting > unrelated


def test_training_and_serving_aggregate_alike():
    """The torch path (training through the aggregate) computes what the numpy path serves."""
    agg = Aggregator("product", prior=0.5, match_threshold=0.5, coverage="noisy_or", weights=Weights(2.0))
    scores = np.array([[0.95, 0.1, 0.5], [0.7, 0.8, 0.3]], dtype=np.float32)
    weights = np.array([[1.0, 0.5, 1.0], [1.0, 1.0, 2.0]], dtype=np.float32)
    served = agg(scores, np.array([3, 3]), weights).scores
    trained = agg.combine(torch.tensor(scores, requires_grad=True), torch.tensor(weights))
    np.testing.assert_allclose(trained.detach().numpy(), served, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(TNORMS))
def test_item_without_entities_gets_the_prior_not_a_vacuous_one(name):
    out = Aggregator(name, prior=0.3, match_threshold=0.5)(np.ones((2, 0), np.float32), np.array([0, 0]), explain=True)
    assert out.scores.tolist() == pytest.approx([0.3, 0.3])
    assert out.empty.all()


def _random_groups(rng: np.random.Generator, n_groups: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Groups as the engine makes them: (scores padded with NEUTRAL to the group's widest, counts, type weights)."""
    groups = []
    for _ in range(n_groups):
        n = int(rng.integers(0, 12))
        counts = rng.integers(0, 9, n).astype(np.int32)
        width = int(counts.max(initial=0))
        scores = np.full((n, width), NEUTRAL, dtype=np.float32)
        weights = np.ones((n, width), dtype=np.float32)
        for i, c in enumerate(counts):
            # Exact 0, 0.5 and 1 too: the kinks of match and contradiction.
            scores[i, :c] = rng.choice([rng.random(), 0.0, 0.5, 1.0], size=c, p=[0.7, 0.1, 0.1, 0.1])
            weights[i, :c] = rng.choice([1.0, 0.0, 0.5, 2.0], size=c)
        groups.append((scores, counts, weights))
    return groups


def _stacked(groups, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One matrix of every group's rows, padded (NEUTRAL, weight 1) to `width`, as a call stacks them."""
    padded = [
        (
            np.pad(s, ((0, 0), (0, width - s.shape[1])), constant_values=NEUTRAL),
            np.pad(w, ((0, 0), (0, width - w.shape[1])), constant_values=1.0),
        )
        for s, _, w in groups
    ]
    return (
        np.concatenate([s for s, _ in padded]).astype(np.float32),
        np.concatenate([c for _, c, _ in groups]),
        np.concatenate([w for _, w in padded]).astype(np.float32),
    )


@pytest.mark.parametrize("name", sorted(TNORMS))
@pytest.mark.parametrize("coverage", COVERAGES)
@pytest.mark.parametrize("coverage_weight", [1.0, 0.5, 2.5])
def test_one_aggregation_of_stacked_groups_is_each_group_aggregated_alone(name, coverage, coverage_weight):
    """The engine aggregates every group of a call at once, padded to a common width: bit for bit what
    each group alone gives (scores, halves, and the explanations of the groups that ask)."""
    agg = Aggregator(name, prior=0.3, match_threshold=0.5, coverage=coverage, weights=Weights(coverage_weight))
    rng = np.random.default_rng(7)
    for trial in range(30):
        groups = _random_groups(rng, int(rng.integers(1, 6)))
        widest = max(s.shape[1] for s, _, _ in groups)
        scores, counts, weights = _stacked(groups, widest + int(rng.integers(0, 4)))
        explained = rng.random(len(groups)) < 0.5
        mask = np.repeat(explained, [len(c) for _, c, _ in groups])
        together = agg(scores, counts, weights, explain=mask)
        lo = 0
        for (s, c, w), explain in zip(groups, explained, strict=True):
            alone, rows = agg(s, c, w, explain=bool(explain)), slice(lo, lo + len(c))
            lo += len(c)
            for field in ("scores", "empty", "coverage", "compatibility"):
                np.testing.assert_array_equal(getattr(together, field)[rows], getattr(alone, field), err_msg=f"{trial} {field}")
                assert getattr(together, field).dtype == getattr(alone, field).dtype
            if explain:
                assert alone.lift is not None and together.lift is not None
                np.testing.assert_array_equal(together.lift[rows, : alone.lift.shape[1]], alone.lift)
                assert not together.lift[rows, alone.lift.shape[1] :].any(), "padding lifts nothing"
                np.testing.assert_array_equal(together.breaker[rows], alone.breaker)
                np.testing.assert_array_equal(together.cover[rows], alone.cover)
            elif together.lift is not None:
                assert not together.lift[rows].any() and (together.breaker[rows] == -1).all()


@pytest.mark.parametrize("name", sorted(TNORMS))
@pytest.mark.parametrize("coverage", COVERAGES)
def test_the_numpy_fast_path_is_the_array_api_one(name, coverage, monkeypatch):
    """Serving's numpy ufuncs compute exactly what array_api_compat's namespace does (the reference)."""
    from array_api_compat import array_namespace

    import entrel.logic.tnorms as tnorms

    agg = Aggregator(name, prior=0.3, match_threshold=0.5, coverage=coverage, weights=Weights(1.5))
    rng = np.random.default_rng(3)
    scores, counts, weights = _stacked(_random_groups(rng, 8), 10)
    fast = agg(scores, counts, weights, explain=True)
    assert tnorms.namespace(scores) is tnorms.NUMPY
    monkeypatch.setattr(tnorms, "namespace", array_namespace)
    monkeypatch.setattr("entrel.logic.aggregate.namespace", array_namespace)
    reference = agg(scores, counts, weights, explain=True)
    for field in ("scores", "coverage", "compatibility", "lift", "breaker", "cover"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(reference, field), err_msg=field)
