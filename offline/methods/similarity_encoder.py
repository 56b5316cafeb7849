"""The similarity term's encoder on ESCI: zero-shot, or fine-tuned on the training queries' labels.

* **Out-of-fold cosines**: the 5 folds over the training queries that
  choose everything else; per fold an encoder fine-tuned on the other four
  folds' labels scores the held fold, so every training query gets a
  cosine from an encoder that never saw it. The similarity weight (and
  whether to fine-tune at all) is chosen on those, by
  :func:`entrel.offline.methods.entity_model.similarity_choice`. Cached in
  ``<models>/entrel-esci-encoder-folds.json``.
* **Served encoders**: fine-tuned on all training queries, one per seed
  run, saved as ``<models>/entrel-esci-encoder[-seed-N]`` with a card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from entrel.catalog import item_text
from entrel.offline import esci
from entrel.offline.evaluate import EvalContext, Scores
from entrel.offline.selection import kfold
from entrel.offline.training.examples import Label
from entrel.offline.training.model_dir import reusable_info
from entrel.offline.training.similarity_encoder import (
    EncoderRecipe,
    GradedText,
    fine_tune_encoder,
    graded_texts,
    train_and_save_encoder,
)
from entrel.scoring import resolve_model_path

__all__ = ["RECIPE", "esci_encoder", "out_of_fold_cosines"]

RECIPE = EncoderRecipe()
_FOLDS_FILE = "entrel-esci-encoder-folds.json"
ENCODER_DIR = "entrel-esci-encoder"


def _examples(ctx: EvalContext, labels: list[Label]) -> list[GradedText]:
    return graded_texts(labels, {label.item_id: item_text(ctx.items[label.item_id]) for label in labels})


def _config(ctx: EvalContext, seed: int) -> dict[str, Any]:
    return {
        "base": ctx.settings.similarity.encoder,
        "recipe": repr(RECIPE),
        "seed": seed,
        "split": ctx.split.describe(),
    }


def _cosines(ctx: EvalContext, encoder: Any, labels: list[Label]) -> Scores:
    queries = sorted({label.query for label in labels})
    query_vectors = dict(zip(queries, encoder.encode(queries, normalize_embeddings=True), strict=True))
    item_vectors = encoder.encode(
        [item_text(ctx.items[label.item_id]) for label in labels], normalize_embeddings=True, show_progress_bar=ctx.progress
    )
    return {
        (label.query, label.item_id): float(query_vectors[label.query] @ vector)
        for label, vector in zip(labels, item_vectors, strict=True)
    }


def out_of_fold_cosines(ctx: EvalContext, folds: int, seed: int) -> Scores:
    """Cosine of every labelled training pair under the encoder fine-tuned on the other folds (cached)."""
    path = ctx.models_dir / _FOLDS_FILE
    config = {**_config(ctx, seed), "folds": folds}
    if path.is_file() and not ctx.retrain:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("config") == config:
            return {(q, i): s for q, i, s in saved["cosines"]}
    base = str(resolve_model_path(ctx.settings.similarity.encoder))
    cosines: dict[tuple[str, str], float] = {}
    reports = []
    for fit, held in kfold(ctx.split.train, folds, seed):
        encoder, report = fine_tune_encoder(base, _examples(ctx, ctx.labels_of(fit)), RECIPE, seed, ctx.progress)
        cosines.update(_cosines(ctx, encoder, ctx.labels_of(held)))
        reports.append(report)
    path.write_text(
        json.dumps({"config": config, "fits": reports, "cosines": [[q, i, s] for (q, i), s in cosines.items()]}) + "\n",
        encoding="utf-8",
    )
    return cosines


def esci_encoder(ctx: EvalContext, seed: int, suffix: str) -> Path:
    """The encoder fine-tuned on all training queries with `seed` (trained and saved when there is none)."""
    directory = ctx.models_dir / f"{ENCODER_DIR}{suffix}"
    config = _config(ctx, seed)
    if reusable_info(directory, config, ctx.retrain) is not None:
        return directory
    card = {
        "description": "entrel similarity-term bi-encoder for ESCI: fine-tuned from the base on the training "
        "queries' graded labels (CoSENT within each query). Serve it with --set similarity.encoder=<this folder>.",
        "data": {"esci": str(esci.default_data_dir())},
        "split": ctx.split.describe(),
        "config": config,
    }
    examples = _examples(ctx, ctx.labels_of(ctx.split.train))
    train_and_save_encoder(ctx.settings.similarity.encoder, examples, RECIPE, seed, directory, card, ctx.progress)
    return directory
