"""Distillation into the entity model through the soft logic (issue: EBRM x Walmart, arXiv 2505.07105).

A teacher scores (query, item) pairs; the entity model is trained so that
the **aggregated item score** (coverage and compatibility, with the served
type weights) reproduces the teacher's score margin between two items of
one query (margin MSE). The labels enter through the start model: the
served ESCI entity model, already trained on the training queries' label
pairs (:mod:`entrel.offline.methods.entity_model`).

* **Teacher**: the mean of per-query z-scores of the zero-shot
  all-mpnet-base-v2 and all-MiniLM-L6-v2 bi-encoders and BM25 (fixed in
  advance, untuned; the distillation method's ensemble without its plain
  cross-encoder, whose recipe search alone takes 45 min on CPU). Its test
  score is the ``teacher`` row. z-scores are taken over each query's whole
  candidate pool, so a query's targets do not depend on how many of its
  candidates a student sees.
* **Pairs**: the training queries' labelled pairs (a seeded sample of 20
  per query, so students train within minutes on a 2-core CPU), plus
  augmented pairs the labels do not cover, by whole queries (10 catalog
  candidates each, from BM25, the bi-encoder and at random: margins need
  several items of one query), queries in one seeded order (nested sets):
  the training queries, the real unlabelled shopper queries
  (``esci-unlabelled-queries``) and pseudo-queries written from catalog
  items as shoppers write (:func:`entrel.offline.training.examples.pseudo_queries`).
  Any equal to a test query after normalisation is dropped.
* **Learning curve**: one student per number of augmented pairs, each from
  the same start model, one epoch; rows ``aug=N`` are the students' pure
  entity aggregates on the test queries (scored directly, no snapshot),
  the method's own row the largest. Nothing here is chosen on the test
  queries.
* **Whether to serve it** is decided by 5-fold cross-validation over the
  training queries (:func:`kfold_check`, the folds of the recipe
  selection): per fold, the chosen recipe trained on the other folds'
  labels, then distilled on their pairs; the held fold scored before and
  after. Serving the distilled model is worth it when the mean held-out
  gain exceeds one standard error of the per-fold gains.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from entrel.errors import EntrelError
from entrel.offline import esci
from entrel.offline.evaluate import EvalContext, MethodResult, Scores, method, quality
from entrel.offline.methods import entity_model
from entrel.offline.methods.distillation import learning_curve, teacher_scores, unlabelled_pairs
from entrel.offline.training.aggregation import item_scores
from entrel.offline.training.examples import item_example, pseudo_queries
from entrel.offline.training.recipe import distil
from entrel.offline.training.trainer import Example, trainable_cross_encoder
from entrel.text import normalize

__all__ = ["AUGMENTED_SIZES", "TEACHER", "entity_distillation", "kfold_check", "shopper_queries"]

log = logging.getLogger(__name__)

# Teacher-scored pairs without labels added to the labelled ones, one student per size.
AUGMENTED_SIZES = (0, 1000, 2000, 4000)
# Labelled pairs per training query the students see (a seeded sample): students within minutes of CPU.
_LABELLED_PER_QUERY = 20
# Augmented pairs come by whole queries, this many candidates of each.
_PER_AUGMENTED_QUERY = 10
# Pseudo-queries written from catalog items, beside the real ones.
_PSEUDO_QUERIES = 200
# The k-fold check's students: this many augmented pairs (a size of the curve; five students fit in an hour of CPU).
_KFOLD_SIZE = 1000
_KFOLD_FILE = "entrel-esci-distillation-kfold.json"
TEACHER = ("biencoder_mpnet", "biencoder_minilm", "bm25")
_UNLABELLED_QUERIES = Path("esci-unlabelled-queries") / "queries.txt"


def shopper_queries(ctx: EvalContext) -> list[str]:
    """The real unlabelled shopper queries beside the ESCI data, less any equal to a held-out query."""
    path = esci.default_data_dir().parent / _UNLABELLED_QUERIES
    if not path.is_file():
        raise EntrelError(f"no unlabelled shopper queries at {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return _unseen(ctx, lines)


def _unseen(ctx: EvalContext, queries: Sequence[str]) -> list[str]:
    """`queries` without blanks, repeats and any equal to a test query after normalisation."""
    held_out = {normalize(q) for q in ctx.split.test}
    return [q for q in dict.fromkeys(queries) if q and normalize(q) not in held_out]


def _pool(ctx: EvalContext) -> dict[str, list[str]]:
    """Unjudged catalog candidates with entities of every augmenting query, queries in one seeded order
    (built once per evaluation run: the k-fold check and the curve share it)."""
    return ctx.shared("entity-distillation-pool", lambda: _build_pool(ctx))


def _build_pool(ctx: EvalContext) -> dict[str, list[str]]:
    seed = ctx.settings.train.seed
    pseudo = pseudo_queries(list(ctx.entities.values()), _PSEUDO_QUERIES, seed)
    queries = _unseen(ctx, [*ctx.split.train, *shopper_queries(ctx), *pseudo])
    random.Random(seed).shuffle(queries)
    by_query: dict[str, list[str]] = {q: [] for q in queries}
    for query, item_id in unlabelled_pairs(ctx, queries):
        if ctx.entities.get(item_id):
            by_query[query].append(item_id)
    return by_query


def _augmented(pool: Mapping[str, Sequence[str]], n: int, excluded: Collection[str] = ()) -> list[tuple[str, str]]:
    """The first `n` augmented pairs: whole queries in the pool's order, `_PER_AUGMENTED_QUERY` candidates each,
    skipping the `excluded` queries (normalised)."""
    out: list[tuple[str, str]] = []
    for query, item_ids in pool.items():
        if len(out) >= n:
            break
        if normalize(query) not in excluded:
            out.extend((query, i) for i in item_ids[: min(_PER_AUGMENTED_QUERY, n - len(out))])
    return out


def _labelled(ctx: EvalContext) -> list[tuple[str, str]]:
    """Up to `_LABELLED_PER_QUERY` labelled (query, item id) pairs with entities per training query, seeded."""
    rng = random.Random(ctx.settings.train.seed)
    out: list[tuple[str, str]] = []
    for query in ctx.split.train:
        pairs = [(lab.query, lab.item_id) for lab in ctx.labels_of([query]) if ctx.entities.get(lab.item_id)]
        out.extend(rng.sample(pairs, min(len(pairs), _LABELLED_PER_QUERY)))
    return out


def _targets(ctx: EvalContext, pool: Mapping[str, Sequence[str]], pairs: Sequence[tuple[str, str]]) -> Scores:
    """The teacher's scores of `pairs`, z-scored over each query's labelled sample and whole candidate pool."""
    queries = {q for q, _ in pairs}
    scored = dict.fromkeys([*pairs, *((q, i) for q in queries for i in pool.get(q, ()))])
    return teacher_scores(ctx, list(scored), TEACHER)


def _examples(ctx: EvalContext, targets: Scores, pairs: Sequence[tuple[str, str]]) -> list[Example]:
    return [item_example(q, ctx.entities[i], targets[(q, i)]) for q, i in pairs]


def _aggregate(ctx: EvalContext, encoder: Any, labels: Sequence[Any], settings: Any) -> Scores:
    """The pure entity aggregate of `labels`' items under `encoder`, scored directly (no snapshot)."""
    return item_scores(entity_model.entity_rows(ctx, entity_model.scorer_of(ctx, encoder), labels), settings.logic)


def kfold_check(ctx: EvalContext) -> dict[str, Any]:
    """Whether distilling the chosen recipe helps on held-out training queries, by the recipe selection's folds
    (cached by configuration)."""
    selection = entity_model.recipe_selection(ctx)
    config = {
        "selection": selection["config"],
        "chosen": selection["chosen"],
        "serve_overrides": selection["serve_overrides"],
        "teacher": list(TEACHER),
        "augmented_pairs": _KFOLD_SIZE,
        "labelled_per_query": _LABELLED_PER_QUERY,
        "per_augmented_query": _PER_AUGMENTED_QUERY,
        "pseudo_queries": _PSEUDO_QUERIES,
    }
    path = ctx.models_dir / _KFOLD_FILE
    if path.is_file() and not ctx.retrain:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("config") == config:
            return dict(saved)
    started = time.perf_counter()
    settings = ctx.settings.replace(**selection["serve_overrides"])
    seed = ctx.settings.train.seed
    pool, labelled = _pool(ctx), _labelled(ctx)
    parts = entity_model.folds(ctx)
    fold_pairs = []
    for fit, held in parts:
        fit_set = set(fit)
        own = [(q, i) for q, i in labelled if q in fit_set]
        fold_pairs.append(own + _augmented(pool, _KFOLD_SIZE, excluded={normalize(q) for q in held}))
    targets = _targets(ctx, pool, list(dict.fromkeys(p for pairs in fold_pairs for p in pairs)))
    per_fold = []
    for (fit, held), pairs in zip(parts, fold_pairs, strict=True):
        encoder, _ = entity_model.train_recipe(ctx, selection["chosen"], ctx.labels_of(fit), seed)
        held_labels = ctx.labels_of(held)
        before = quality(held_labels, _aggregate(ctx, encoder, held_labels, settings))["ndcg@10"]
        report = distil(settings, encoder, _examples(ctx, targets, pairs), seed, progress=ctx.progress)
        after = quality(held_labels, _aggregate(ctx, encoder, held_labels, settings))["ndcg@10"]
        per_fold.append(
            {
                "start": round(before, 4),
                "distilled": round(after, 4),
                "pairs": len(pairs),
                "seconds": round(report.seconds, 1),
            }
        )
        log.info("distillation measured on a held fold", extra=per_fold[-1])
    gains = [f["distilled"] - f["start"] for f in per_fold]
    gain, standard_error = float(np.mean(gains)), float(np.std(gains, ddof=1) / np.sqrt(len(gains)))
    check = {
        "config": config,
        "rule": f"{len(parts)}-fold by query over the training queries (the recipe selection's folds): per fold the "
        "chosen recipe trained on the other folds' labels, then distilled on their pairs; the held fold's pure entity "
        "aggregate before and after. Worth serving when the mean gain exceeds one standard error of the per-fold gains.",
        "folds": per_fold,
        "mean_start": round(float(np.mean([f["start"] for f in per_fold])), 4),
        "mean_distilled": round(float(np.mean([f["distilled"] for f in per_fold])), 4),
        "mean_gain": round(gain, 4),
        "standard_error": round(standard_error, 4),
        "worth_serving": gain > standard_error,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
    log.info("distillation checked by k-fold", extra={k: v for k, v in check.items() if k not in ("config", "folds")})
    return check


@method("entrel_distilled", quick=False)
def entity_distillation(ctx: EvalContext) -> MethodResult:
    """Students of the entity model on growing numbers of teacher-scored pairs; the teacher beside them;
    the k-fold check of whether to serve one."""
    check = kfold_check(ctx)
    start, info, _ = entity_model.esci_model(ctx, 0)
    settings = ctx.settings.replace(**info.get("serve_overrides", {}))
    pool, labelled = _pool(ctx), _labelled(ctx)
    sizes = [n for n in AUGMENTED_SIZES if n <= sum(len(v) for v in pool.values())]
    augmented = _augmented(pool, max(sizes))
    targets = _targets(ctx, pool, labelled + augmented)
    test_pairs = [(lab.query, lab.item_id) for lab in ctx.test_labels]

    def student(n: int) -> tuple[Scores, float]:
        encoder = trainable_cross_encoder(str(start), ctx.settings.model.max_length, ctx.settings.train.seed)
        examples = _examples(ctx, targets, labelled + augmented[:n])
        report = distil(settings, encoder, examples, ctx.settings.train.seed, progress=ctx.progress)
        return _aggregate(ctx, encoder, ctx.test_labels, settings), report.seconds

    students, curve = learning_curve(sizes, student, "aug")
    variants: dict[str, Scores] = {
        "teacher": teacher_scores(ctx, test_pairs, TEACHER),
        # The start model scored the same way: what the distillation adds.
        "start": _aggregate(ctx, start, ctx.test_labels, settings),
        **students,
    }
    return MethodResult(
        (variants[curve["student"]],),
        {
            **curve,
            "start_model": str(start),
            "labelled_pairs": len(labelled),
            "augmented_queries": len(pool),
            "queries_in_largest": len({q for q, _ in augmented}),
            "teacher": f"mean z-score of {', '.join(TEACHER)} (fixed, untuned)",
            "serve_overrides": info.get("serve_overrides", {}),
            "kfold_check": {k: v for k, v in check.items() if k != "config"},
        },
        variants,
    )
