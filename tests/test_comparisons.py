"""Telling candidates apart: paired bootstrap intervals, k-fold choices, spread over runs, more AUCs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from entrel.catalog import CatalogItem
from entrel.config import Settings
from entrel.errors import EntrelError
from entrel.offline import esci, evaluate
from entrel.offline.evaluate import EvalContext, quality
from entrel.offline.metrics import Interval, paired_bootstrap
from entrel.offline.selection import choose_by_kfold, kfold
from entrel.offline.training.examples import Label


def _queries(n: int) -> list[str]:
    return [f"q{i:03d}" for i in range(n)]


def test_bootstrap_of_a_constant_difference_is_that_difference():
    b = dict(zip(_queries(40), np.linspace(0.2, 0.9, 40), strict=True))
    a = {q: v + 0.03 for q, v in b.items()}
    interval = paired_bootstrap(a, b, n=2000, seed=1)
    assert interval.mean == pytest.approx(0.03)
    assert interval.low == pytest.approx(0.03) and interval.high == pytest.approx(0.03)


def test_bootstrap_interval_matches_the_normal_approximation():
    """Differences +1/-1 on 100 queries: mean 0, standard error 0.1, so the 95% interval is about +-0.196."""
    queries = _queries(100)
    a = {q: float(i % 2) for i, q in enumerate(queries)}
    b = {q: 1.0 - a[q] for q in queries}
    interval = paired_bootstrap(a, b, n=10_000, seed=0)
    assert interval.mean == 0.0
    assert interval.low == pytest.approx(-0.196, abs=0.015) and interval.high == pytest.approx(0.196, abs=0.015)


def test_bootstrap_is_seeded_antisymmetric_and_paired():
    rng = np.random.default_rng(3)
    queries = _queries(50)
    b = dict(zip(queries, rng.random(50).tolist(), strict=True))
    a = {q: v + rng.normal(0.05, 0.02) for q, v in b.items()}
    ab, ba = paired_bootstrap(a, b, seed=7), paired_bootstrap(b, a, seed=7)
    assert ab == paired_bootstrap(a, b, seed=7) and ab != paired_bootstrap(a, b, seed=8)
    assert (ba.mean, ba.low, ba.high) == pytest.approx((-ab.mean, -ab.high, -ab.low))
    # Per-query noise (0..1) is far larger than the 0.05 gain, yet pairing by query shows it.
    assert 0.04 < ab.low < ab.mean < ab.high < 0.06
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap(a, {q: b[q] for q in queries[1:]})


def test_interval_reads_as_signed_mean_and_bounds():
    assert str(Interval(0.0342, 0.0121, 0.0549)) == "+0.034 [0.012, 0.055]"
    assert str(Interval(-0.01, -0.03, 0.011)) == "-0.010 [-0.030, 0.011]"


def test_default_comparisons_are_every_method_against_present_references():
    rows = ["random", "bm25", "biencoder_minilm", "entrel"]
    assert evaluate.default_comparisons(rows) == [
        ("random", "bm25"),
        ("biencoder_minilm", "bm25"),
        ("entrel", "bm25"),
        ("random", "biencoder_minilm"),
        ("entrel", "biencoder_minilm"),
    ]
    assert evaluate.default_comparisons(["random", "distillation"]) == [("random", "distillation")]
    pairs = evaluate.parse_compare(" entrel:bm25, entrel/tnorm=min:entrel ")
    assert pairs == [("entrel", "bm25"), ("entrel/tnorm=min", "entrel")]
    with pytest.raises(EntrelError, match="A:B"):
        evaluate.parse_compare("entrel-bm25")


def test_kfold_holds_each_query_out_once_deterministically():
    queries = _queries(100)
    folds = kfold(queries, k=5, seed=0)
    assert len(folds) == 5
    held = [q for _, h in folds for q in h]
    assert sorted(held) == queries, "each query held out exactly once"
    for fit, held_out in folds:
        assert len(held_out) == 20 and set(fit) == set(queries) - set(held_out)
        assert list(fit) == sorted(fit) and list(held_out) == sorted(held_out)
    shuffled = queries[:]
    random.Random(2).shuffle(shuffled)
    assert kfold(shuffled + queries[:7], k=5, seed=0) == folds, "order and duplicates do not matter"
    assert kfold(queries, k=5, seed=1) != folds
    assert sorted(len(h) for _, h in kfold(_queries(23), k=5)) == [4, 4, 5, 5, 5]
    with pytest.raises(ValueError, match="k-fold"):
        kfold(_queries(3), k=5)


def _context(train: int, test: int) -> EvalContext:
    """Queries with one exact, one complement and two irrelevant items each."""
    queries = _queries(train + test)
    grades = (3, 1, 0, 0)
    labels = tuple(Label(q, f"{q}-{n}", g) for q in queries for n, g in enumerate(grades))
    items = {lab.item_id: CatalogItem(lab.item_id, f"item {lab.item_id}") for lab in labels}
    split = esci.Split(tuple(queries[:train]), (), tuple(queries[train:]))
    return EvalContext(Settings(), esci.EsciData(items, labels, split), split, quick=True, progress=False)


def test_choose_by_kfold_picks_the_better_candidate_and_never_shows_test_queries():
    ctx = _context(train=30, test=10)
    seen: list[tuple[tuple[str, ...], list[str]]] = []

    def oracle(fit, held):
        seen.append((tuple(fit), sorted({lab.query for lab in held})))
        return {(lab.query, lab.item_id): float(lab.grade) for lab in held}

    def backwards(fit, held):
        return {(lab.query, lab.item_id): -float(lab.grade) for lab in held}

    best, values = choose_by_kfold(ctx, {"backwards": backwards, "oracle": oracle}, k=5, seed=0)
    assert best == "oracle"
    assert values["oracle"] == (1.0, 0.0)
    assert values["backwards"][0] < 0.6 and values["backwards"][1] == 0.0
    assert len(seen) == 5
    assert sorted(q for _, held in seen for q in held) == list(ctx.split.train)
    for fit, held in seen:
        assert not set(fit) & set(held)
        assert not (set(fit) | set(held)) & set(ctx.split.test)


def test_quality_reports_exact_against_each_lower_grade():
    labels = [Label("q", f"i{n}", g) for n, g in enumerate((3, 2, 1, 0))]
    # Order: complement, exact, irrelevant, substitute.
    scores = {("q", "i1"): 0.0, ("q", "i2"): 0.9, ("q", "i0"): 0.5, ("q", "i3"): 0.2}
    m = quality(labels, scores)
    assert (m["auc_e_vs_i"], m["auc_e_vs_c"], m["auc_e_vs_s"]) == (1.0, 0.0, 1.0)
    without_complements = quality(labels[:2] + labels[3:], scores)
    assert np.isnan(without_complements["auc_e_vs_c"])


def test_several_runs_report_mean_and_sd_and_per_query_ndcg():
    ctx = _context(train=0, test=3)
    good = {(lab.query, lab.item_id): float(lab.grade) for lab in ctx.test_labels}
    bad = {key: -value for key, value in good.items()}
    row = evaluate._metrics(ctx, (good, bad))
    values = [quality(ctx.test_labels, s)["ndcg@10"] for s in (good, bad)]
    assert row["ndcg@10"] == pytest.approx(np.mean(values), abs=1e-4)
    assert row["ndcg@10_sd"] == pytest.approx(np.std(values, ddof=1), abs=1e-4) and row["runs"] == 2
    assert row["per_query_ndcg@10"] == pytest.approx(dict.fromkeys(ctx.split.test, np.mean(values)), abs=1e-6)
    single = evaluate._metrics(ctx, (good,))
    assert "ndcg@10_sd" not in single and single["per_query_ndcg@10"] == dict.fromkeys(ctx.split.test, 1.0)
    table = evaluate._table({"twice": {**row, "seconds": 1.0}, "once": {**single, "seconds": 1.0}})
    assert f"{row['ndcg@10']:.3f} ± {row['ndcg@10_sd']:.3f}" in table and "1.0000" in table
