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
  score is the ``teacher`` row.
* **Pairs**: the training queries' labelled pairs (a seeded sample of 20
  per query, so four students train within an hour on a 2-core CPU), plus augmented pairs
  the labels do not cover, in one seeded order (nested sets): catalog
  candidates (BM25, bi-encoder, random) of the training queries and of the
  real unlabelled shopper queries (``esci-unlabelled-queries``; those equal
  to a test query after normalisation are dropped).
* **Learning curve**: one student per number of augmented pairs, each from
  the same start model, one epoch; rows ``aug=N`` are the students' pure
  entity aggregates on the test queries (scored directly, no snapshot),
  the method's own row the largest. Nothing here is chosen on the test
  queries: the curve is reported, and the served model is unchanged.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from entrel.errors import EntrelError
from entrel.offline import esci
from entrel.offline.evaluate import EvalContext, MethodResult, Scores, method
from entrel.offline.methods import entity_model
from entrel.offline.methods.distillation import teacher_scores, unlabelled_pairs
from entrel.offline.training.aggregation import item_scores
from entrel.offline.training.examples import item_example
from entrel.offline.training.recipe import distil
from entrel.offline.training.trainer import trainable_cross_encoder
from entrel.text import normalize

__all__ = ["AUGMENTED_SIZES", "TEACHER", "entity_distillation", "shopper_queries"]

log = logging.getLogger(__name__)

# Teacher-scored pairs without labels added to the labelled ones, one student per size.
AUGMENTED_SIZES = (0, 1000, 2000, 4000)
# Labelled pairs per training query the students see (a seeded sample): four students within an hour of CPU.
_LABELLED_PER_QUERY = 20
TEACHER = ("biencoder_mpnet", "biencoder_minilm", "bm25")
_UNLABELLED_QUERIES = Path("esci-unlabelled-queries") / "queries.txt"


def shopper_queries(ctx: EvalContext) -> list[str]:
    """The real unlabelled shopper queries beside the ESCI data, less any equal to a held-out query."""
    path = esci.default_data_dir().parent / _UNLABELLED_QUERIES
    if not path.is_file():
        raise EntrelError(f"no unlabelled shopper queries at {path}")
    held_out = {normalize(q) for q in ctx.split.test}
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [q for q in dict.fromkeys(lines) if q and normalize(q) not in held_out]


def _augmented(ctx: EvalContext) -> list[tuple[str, str]]:
    """Unjudged (query, item id) candidates of the training and shopper queries, one seeded order."""
    pairs = unlabelled_pairs(ctx, ctx.split.train) + unlabelled_pairs(ctx, shopper_queries(ctx))
    pairs = [(q, i) for q, i in pairs if ctx.entities.get(i)]
    random.Random(ctx.settings.train.seed).shuffle(pairs)
    return pairs


def _labelled(ctx: EvalContext) -> list[tuple[str, str]]:
    """Up to `_LABELLED_PER_QUERY` labelled (query, item id) pairs with entities per training query, seeded."""
    rng = random.Random(ctx.settings.train.seed)
    out: list[tuple[str, str]] = []
    for query in ctx.split.train:
        pairs = [(lab.query, lab.item_id) for lab in ctx.labels_of([query]) if ctx.entities.get(lab.item_id)]
        out.extend(rng.sample(pairs, min(len(pairs), _LABELLED_PER_QUERY)))
    return out


@method("entrel_distilled", quick=False)
def entity_distillation(ctx: EvalContext) -> MethodResult:
    """Students of the entity model on growing numbers of teacher-scored pairs; the teacher beside them."""
    start, info, _ = entity_model.esci_model(ctx, 0)
    settings = ctx.settings.replace(**info.get("serve_overrides", {}))
    labelled = _labelled(ctx)
    augmented = _augmented(ctx)
    sizes = [n for n in AUGMENTED_SIZES if n <= len(augmented)]
    # z-scores are taken over each query's whole teacher-scored pool, as the largest student sees it.
    targets = teacher_scores(ctx, labelled + augmented[: max(sizes)], TEACHER)
    test_pairs = [(lab.query, lab.item_id) for lab in ctx.test_labels]
    variants: dict[str, Scores] = {
        "teacher": teacher_scores(ctx, test_pairs, TEACHER),
        # The start model scored the same way: what the distillation adds.
        "start": item_scores(entity_model.entity_rows(ctx, entity_model.scorer_of(ctx, start), ctx.test_labels), settings.logic),
    }
    seconds: dict[str, float] = {}
    for n in sizes:
        encoder = trainable_cross_encoder(str(start), ctx.settings.model.max_length, ctx.settings.train.seed)
        examples = [item_example(q, ctx.entities[i], targets[(q, i)]) for q, i in labelled + augmented[:n]]
        report = distil(settings, encoder, examples, ctx.settings.train.seed, progress=ctx.progress)
        rows = entity_model.entity_rows(ctx, entity_model.scorer_of(ctx, encoder), ctx.test_labels)
        variants[f"aug={n}"], seconds[str(n)] = item_scores(rows, settings.logic), report.seconds
        log.info("entity student trained", extra={"augmented_pairs": n, "seconds": round(report.seconds, 1)})
    largest = f"aug={max(sizes)}"
    return MethodResult(
        (variants[largest],),
        {
            "student": largest,
            "start_model": str(start),
            "labelled_pairs": len(labelled),
            "augmented_pool": len(augmented),
            "augmented_sizes": sizes,
            "train_seconds": round(sum(seconds.values()), 1),
            "student_train_seconds": {k: round(v, 1) for k, v in seconds.items()},
            "teacher": f"mean z-score of {', '.join(TEACHER)} (fixed, untuned)",
            "serve_overrides": info.get("serve_overrides", {}),
        },
        variants,
    )
