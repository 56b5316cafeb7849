"""entrel's own entity model on ESCI, and the `entrel` row scored the way the server scores.

The model scores each (query, entity) pair on one scale (1 the query asks
for it, 0.5 neutral, 0 contradicts); items combine coverage and
compatibility (:mod:`entrel.logic`). Its recipe is
:mod:`entrel.offline.training.recipe`; here it is chosen and measured:

* **Selection by 5-fold cross-validation over the 100 training queries**
  (never the test queries): each candidate recipe is trained on four folds
  and scores the fifth, giving out-of-fold entity scores for every training
  query; the aggregation's few weights are fitted on four folds' scores and
  measured on the fifth (nested), so each candidate's value is an honest
  held-out nDCG@10. The winner's weights are then fitted on all out-of-fold
  scores. Results are cached in ``<models>/entrel-esci-selection.json``.
* **Final models**: the chosen recipe trained on all training queries,
  once per seed (the label-free pretraining is shared; the seeds vary the
  label stage), each saved as
  ``<models>/entrel-esci[-seed-N]`` with its card and the ``--set`` overrides
  that serve its weights.
* **The similarity weight** (item-level term, :mod:`entrel.scoring.similarity`)
  is chosen by the same 5 folds over the training queries: the label-free
  model's entity scores there (it never saw their labels), aggregated with
  the chosen weights, blended with the bi-encoder's cosine; each fold's
  weight is fitted on the other four, and the one fitted on all is served.
  So is its encoder: zero-shot, or fine-tuned on the training labels
  (:mod:`entrel.offline.methods.similarity_encoder`), the latter only when
  its held-out gain exceeds one standard error across folds.
  Cached in ``<models>/entrel-esci-similarity.json``.
* **The pure entity model** (row ``pure_entities``): the same two choices
  (weight, exclusion penalty) by the same folds, with the similarity
  computed from the item's entities (``similarity.source = "entities"``:
  the bag of its entity-text vectors) and exclusions read in its entity
  texts, not its title: nothing item-level is left. Cached in
  ``<models>/entrel-esci-entity-similarity.json``.
* **The row** goes through the product's own path for every seed: the
  ESCI catalog written as an entrel JSONL catalog, the test queries as its
  query log, the nightly job's LMDB snapshot, ``entrel serve`` as a
  subprocess, every judged item scored over gRPC with explanations (pairs
  outside the snapshot scored live). Variant rows re-aggregate the first
  seed's served entity scores (unfitted weights, other coverage, each
  entity type left out) or score the candidates; ``entity_aggregate`` is
  the served entity score alone (no similarity term).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entrel.catalog import item_text
from entrel.config import LogicSettings, Settings
from entrel.errors import EntrelError
from entrel.logic.exclusion import entity_text, excluded_terms, violated_exclusion
from entrel.offline import esci, nightly
from entrel.offline.evaluate import EvalContext, MethodResult, Scores, method, quality
from entrel.offline.methods import similarity_encoder
from entrel.offline.methods.baselines import cosine_scores
from entrel.offline.selection import kfold
from entrel.offline.training.aggregation import EntityRows, fit_logic, item_scores, logic_overrides
from entrel.offline.training.examples import Label
from entrel.offline.training.model_dir import record_metrics, reusable_info, save_model
from entrel.offline.training.recipe import pretrain, train_entity_model
from entrel.offline.training.trainer import trainable_cross_encoder
from entrel.scoring import MODEL_INFO_FILE, CrossEncoderScorer, bag_vectors, resolve_model_path
from entrel.service.client import RelevanceClient
from entrel.service.process import serving
from entrel.text import normalize

__all__ = [
    "CANDIDATES",
    "ESCI_MODEL_DIR",
    "Explained",
    "entity_rows",
    "entrel_entity_model",
    "esci_model",
    "folds",
    "recipe_selection",
    "saved_serving_settings",
    "scorer_of",
    "serving_settings",
    "served",
    "similarity_choice",
    "train_recipe",
]

log = logging.getLogger(__name__)

ESCI_MODEL_DIR = "entrel-esci"
_PRETRAINED_DIR = "entrel-esci-pretrained"
_SELECTION_FILE = "entrel-esci-selection.json"
_SIMILARITY_FILE = "entrel-esci-similarity.json"
_ENTITY_SIMILARITY_FILE = "entrel-esci-entity-similarity.json"
# The similarity term's encoder candidates: as configured, or fine-tuned on the training labels.
_ZERO_SHOT = "zero-shot"
_FINE_TUNED = "fine-tuned"
# Weights of the similarity term tried (1.0: the bi-encoder alone).
_SIMILARITY_WEIGHTS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
# Penalties tried for naming what the query excludes (entrel.logic.exclusion); 0: off.
_EXCLUSION_PENALTIES = (0.0, 0.2, 0.3, 0.5, 0.7, 1.0)
# Generated queries for pretraining (each gives ~17 query-entity pairs); quick runs use fewer.
_SYNTHETIC_QUERIES = {False: 1500, True: 300}
_FOLDS = 5
_SEEDS = 3
# Bump when examples or stages change: saved models then retrain.
_FORMAT_VERSION = 2
# Scoring a query's judged items live can take a while on CPU: no deadline should cut it short.
_DEADLINE_MS = 600_000


@dataclass(frozen=True)
class Candidate:
    name: str
    # Stage 2: real queries' (query, entity) outcomes read off item labels.
    label_pairs: bool


CANDIDATES = (Candidate("pretrained", label_pairs=False), Candidate("pretrained+label-pairs", label_pairs=True))


@dataclass(frozen=True)
class Explained:
    """Per judged (query, item): its score, and its entities' types and scores."""

    item_scores: dict[tuple[str, str], float]
    entities: EntityRows
    # The served entity score alone (the item score without the similarity term).
    entity_scores: dict[tuple[str, str], float]
    # The served similarity (cosine of query and item text, at least 0).
    similarities: dict[tuple[str, str], float]

    def aggregate(self, logic: LogicSettings, without_type: str | None = None) -> Scores:
        """Item scores under other aggregation settings, or without one entity type."""
        return item_scores(self.entities, logic, without_type)


def _settings(ctx: EvalContext) -> Settings:
    return ctx.settings.replace(**{"train.synthetic_queries": str(_SYNTHETIC_QUERIES[ctx.quick])})


def _seed(ctx: EvalContext, run: int) -> int:
    return ctx.settings.train.seed + run


def folds(ctx: EvalContext) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The (fit, held-out) training queries of every k-fold choice here: the same folds for each."""
    return kfold(ctx.split.train, _FOLDS, _seed(ctx, 0))


def _pretrained(ctx: EvalContext) -> tuple[Path, float]:
    """Stage 1 (label-free, shared by every candidate, fold and seed), saved and reused: directory, seconds.

    One pretraining for all seeds keeps the evaluation within a CPU budget;
    the seeds vary the label stage (its shuffling and dropout).
    """
    seed = _seed(ctx, 0)
    directory = ctx.models_dir / _PRETRAINED_DIR / f"{'quick-' if ctx.quick else ''}seed-{seed}"
    config = {**_pretraining_config(ctx), "seed": seed}
    info = reusable_info(directory, config, ctx.retrain)
    if info is not None:
        return directory, info["training_seconds"]
    entities = list(ctx.entities.values())
    encoder, report = pretrain(_settings(ctx), entities, seed, ctx.progress)
    save_model(
        encoder,
        directory,
        {
            "description": "entrel entity model, pretraining stage only: (query, entity) outcomes generated from "
            "the ESCI catalog's entities (no labels).",
            "training_seconds": round(report.seconds, 1),
            "data": {"synthetic_queries": _SYNTHETIC_QUERIES[ctx.quick], "pairs": report.pairs_per_epoch},
            "config": config,
        },
    )
    return directory, report.seconds


def train_recipe(ctx: EvalContext, name: str, labels: Sequence[Label], seed: int) -> tuple[Any, float]:
    """A model of candidate `name`'s recipe for `seed` trained on `labels`; the seconds its stages took."""
    candidate = next(c for c in CANDIDATES if c.name == name)
    start, seconds = _pretrained(ctx)
    encoder = trainable_cross_encoder(str(start), ctx.settings.model.max_length, seed)
    if candidate.label_pairs:
        stages = train_entity_model(
            _settings(ctx), encoder, seed, labels=labels, entities_by_item=ctx.entities, progress=ctx.progress
        )
        seconds += stages.seconds
    return encoder, seconds


def entity_rows(ctx: EvalContext, scorer: Any, labels: Sequence[Label]) -> EntityRows:
    """Entity types and scores of the judged items, from the model itself (no snapshot)."""
    entities = {label.item_id: ctx.entities[label.item_id] for label in labels}
    pairs = sorted({(normalize(lab.query), e.render()) for lab in labels for e in entities[lab.item_id]})
    score_of = dict(zip(pairs, scorer.score(pairs).tolist(), strict=True))
    return {
        (lab.query, lab.item_id): (
            tuple(e.type.value for e in entities[lab.item_id]),
            np.array([score_of[(normalize(lab.query), e.render())] for e in entities[lab.item_id]], dtype=np.float32),
        )
        for lab in labels
    }


def scorer_of(ctx: EvalContext, encoder_or_dir: Any) -> CrossEncoderScorer:
    """A scorer of a saved model directory, or of a model just trained (saved to a scratch folder first)."""
    if not isinstance(encoder_or_dir, Path):
        scratch = ctx.models_dir / ".scratch"
        save_model(encoder_or_dir, scratch, {"description": "scratch copy for scoring"})
        encoder_or_dir = scratch
    return CrossEncoderScorer(ctx.settings.replace(**{"model.name_or_path": str(encoder_or_dir)}).model)


def _nested_value(ctx: EvalContext, rows: EntityRows, labels: Sequence[Label], parts: Sequence[Sequence[str]]) -> list[float]:
    """Per fold: nDCG@10 of the held fold with the weights fitted on the other folds' out-of-fold scores."""
    values = []
    for held in parts:
        held_set = set(held)
        fit_labels = [lab for lab in labels if lab.query not in held_set]
        logic, _ = fit_logic(rows, fit_labels, ctx.settings)
        held_labels = [lab for lab in labels if lab.query in held_set]
        values.append(quality(held_labels, item_scores(rows, logic))["ndcg@10"])
    return values


def recipe_selection(ctx: EvalContext) -> dict[str, Any]:
    """K-fold choice of the recipe and fitted weights over the training queries (cached by configuration)."""
    path = ctx.models_dir / _SELECTION_FILE
    config = _config(ctx)
    if path.is_file() and not ctx.retrain:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("config") == config:
            return saved
    started = time.perf_counter()
    seed = _seed(ctx, 0)
    train_labels = ctx.labels_of(ctx.split.train)
    parts = folds(ctx)
    candidates: dict[str, dict[str, Any]] = {}
    oof: dict[str, EntityRows] = {}
    for candidate in CANDIDATES:
        rows: dict[tuple[str, str], Any] = {}
        if candidate.label_pairs:
            for fit_queries, held in parts:
                encoder, _ = train_recipe(ctx, candidate.name, ctx.labels_of(fit_queries), seed)
                rows |= entity_rows(ctx, scorer_of(ctx, encoder), ctx.labels_of(held))
        else:  # label-free: its scores on every training query are out-of-sample already
            rows = dict(entity_rows(ctx, scorer_of(ctx, _pretrained(ctx)[0]), train_labels))
        oof[candidate.name] = rows
        nested = _nested_value(ctx, rows, train_labels, [held for _, held in parts])
        unfitted = [quality(ctx.labels_of(held), item_scores(rows, ctx.settings.logic))["ndcg@10"] for _, held in parts]
        candidates[candidate.name] = {
            "kfold_ndcg@10_fitted_weights": [round(v, 4) for v in nested],
            "kfold_ndcg@10_default_weights": [round(v, 4) for v in unfitted],
            "mean_fitted": round(float(np.mean(nested)), 4),
            "sd_fitted": round(float(np.std(nested)), 4),
            "mean_default": round(float(np.mean(unfitted)), 4),
        }
        log.info("candidate measured by k-fold", extra={"candidate": candidate.name, **candidates[candidate.name]})
    best = max(CANDIDATES, key=lambda c: max(candidates[c.name]["mean_fitted"], candidates[c.name]["mean_default"]))
    use_fitted = candidates[best.name]["mean_fitted"] > candidates[best.name]["mean_default"]
    logic = fit_logic(oof[best.name], train_labels, ctx.settings)[0] if use_fitted else ctx.settings.logic
    selection = {
        "config": config,
        "folds": _FOLDS,
        "rule": f"{_FOLDS}-fold by query over the {len(ctx.split.train)} training queries (seeded shuffle); "
        "weights fitted inside each fold (nested); the recipe with the best mean held-out nDCG@10 wins; "
        "fitted weights are kept only if they beat the defaults",
        "candidates": candidates,
        "chosen": best.name,
        "fitted_weights": use_fitted,
        "serve_overrides": logic_overrides(logic),
        "seconds": round(time.perf_counter() - started, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(selection, indent=2) + "\n", encoding="utf-8")
    return selection


def similarity_choice(ctx: EvalContext) -> dict[str, Any]:
    """K-fold choice of the similarity term's encoder and weight over the training queries (cached by configuration).

    Entity scores come from the label-free model (out of sample on every
    training query), aggregated as the selection chose. Two encoders: the
    configured one zero-shot, and the same fine-tuned on the other folds'
    labels (out-of-fold cosines, :mod:`entrel.offline.methods.similarity_encoder`).
    For each, every fold's weight is the best on the other four folds and is
    measured on the held fold. Fine-tuning is served only when its held-out
    gain exceeds its noise across folds (one standard error of the per-fold
    gains; else the simpler zero-shot encoder), with the weight best on all
    training queries. A quick run keeps the configured encoder and weight.
    """
    if ctx.quick:
        return _configured_choice(ctx) | {"encoder": _ZERO_SHOT}
    path = ctx.models_dir / _SIMILARITY_FILE
    selection = recipe_selection(ctx)
    config = _choice_config(ctx, selection, fine_tuning=repr(similarity_encoder.RECIPE))
    if (saved := _saved_choice(ctx, path, config)) is not None:
        return saved
    entity = _label_free_training_scores(ctx, selection)
    cosines = {
        _ZERO_SHOT: cosine_scores(ctx, resolve_model_path(ctx.settings.similarity.encoder), item_text, list(entity)),
        _FINE_TUNED: similarity_encoder.out_of_fold_cosines(ctx, _FOLDS, _seed(ctx, 0)),
    }
    parts = folds(ctx)
    excluded = {
        (query, item_id): bool(violated_exclusion(excluded_terms(normalize(query)), ctx.items[item_id].title))
        for query, item_id in entity
    }
    encoders = {name: _weight_by_kfold(ctx, entity, cosine, parts) for name, cosine in cosines.items()}
    gains = [
        tuned["held_ndcg@10"] - plain["held_ndcg@10"]
        for tuned, plain in zip(encoders[_FINE_TUNED]["folds"], encoders[_ZERO_SHOT]["folds"], strict=True)
    ]
    gain, standard_error = float(np.mean(gains)), float(np.std(gains, ddof=1) / np.sqrt(len(gains)))
    chosen = _FINE_TUNED if gain > standard_error else _ZERO_SHOT
    choice = {
        "config": config,
        "rule": f"{_FOLDS}-fold by query over the training queries: per encoder, each fold's weight is the best "
        "mean nDCG@10 on the other folds, measured on the held fold; the fine-tuned encoder is served only when "
        "its mean held-out gain over zero-shot exceeds one standard error of the per-fold gains (else the "
        "simpler zero-shot one), with the weight best on all training queries",
        "encoder": chosen,
        "weight": encoders[chosen]["weight"],
        "exclusion": _penalty_by_kfold(ctx, _Blend(entity, cosines[chosen], excluded), parts, encoders[chosen]),
        "fine_tuned_gain": {
            "mean": round(gain, 4),
            "standard_error": round(standard_error, 4),
            "per_fold": [round(g, 4) for g in gains],
        },
        "encoders": encoders,
    }
    path.write_text(json.dumps(choice, indent=2) + "\n", encoding="utf-8")
    log.info("similarity term chosen by k-fold", extra={k: v for k, v in choice.items() if k != "config"})
    return choice


def _configured_choice(ctx: EvalContext) -> dict[str, Any]:
    """What a quick run serves instead of a k-fold choice: the configured weight and penalty."""
    return {
        "weight": ctx.settings.similarity.weight,
        "exclusion": {"penalty": ctx.settings.exclusion.penalty},
        "rule": "quick run: the configured weight and penalty",
    }


def _choice_config(ctx: EvalContext, selection: Mapping[str, Any], **specific: str) -> dict[str, Any]:
    """What a k-fold choice of weight and penalty depends on: a saved choice is reused only while it is the same."""
    return {
        **_config(ctx),
        "serve_overrides": selection["serve_overrides"],
        "weights": list(_SIMILARITY_WEIGHTS),
        "encoder": ctx.settings.similarity.encoder,
        **specific,
        "exclusion_penalties": list(_EXCLUSION_PENALTIES),
    }


def _saved_choice(ctx: EvalContext, path: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The choice saved at `path` when it was made under `config` (and no retraining was asked)."""
    if not path.is_file() or ctx.retrain:
        return None
    saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return saved if saved.get("config") == config else None


def _label_free_training_scores(ctx: EvalContext, selection: Mapping[str, Any]) -> Scores:
    """Entity scores of every labelled training pair from the label-free model (out of sample on all of
    them), aggregated with the chosen weights: what the similarity choices blend with."""

    def build() -> Scores:
        rows = entity_rows(ctx, scorer_of(ctx, _pretrained(ctx)[0]), ctx.labels_of(ctx.split.train))
        return item_scores(rows, ctx.settings.replace(**selection["serve_overrides"]).logic)

    return ctx.shared("label-free-training-scores", build)


def entity_bag_cosines(ctx: EvalContext, pairs: Sequence[tuple[str, str]]) -> Scores:
    """Cosine of each (normalised query, item id) with the item's bag of entity vectors
    (``similarity.source = "entities"``, :func:`~entrel.scoring.bag_vectors` as the nightly makes them)."""
    if not pairs:
        return {}
    model = resolve_model_path(ctx.settings.similarity.encoder)
    items = sorted({item_id for _, item_id in pairs})
    per_item = [[entity.text for entity in ctx.entities.get(item_id, [])] for item_id in items]
    queries = ctx.embed(model, [normalize(query) for query, _ in pairs])
    bags = bag_vectors(per_item, lambda texts: ctx.embed(model, texts), queries.shape[1])
    assert bags is not None, "ctx.embed always encodes"
    bag_of = dict(zip(items, bags.astype(np.float32), strict=True))
    return {pair: float(query @ bag_of[pair[1]]) for pair, query in zip(pairs, queries, strict=True)}


def _excluded_in_entities(ctx: EvalContext, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """Whether the item's entity texts name what the query excludes (the pure model's exclusion rule)."""
    return {
        (query, item_id): bool(
            violated_exclusion(excluded_terms(normalize(query)), entity_text(e.text for e in ctx.entities.get(item_id, [])))
        )
        for query, item_id in pairs
    }


def entity_similarity_choice(ctx: EvalContext) -> dict[str, Any]:
    """K-fold choice of the pure entity model's similarity weight and exclusion penalty (cached by configuration):
    :func:`similarity_choice`'s folds and rule, the similarity from entity bags, exclusions read in entity texts."""
    if ctx.quick:
        return _configured_choice(ctx)
    path = ctx.models_dir / _ENTITY_SIMILARITY_FILE
    selection = recipe_selection(ctx)
    config = _choice_config(ctx, selection, source="entities", queries="normalised")
    if (saved := _saved_choice(ctx, path, config)) is not None:
        return saved
    entity = _label_free_training_scores(ctx, selection)
    pairs = list(entity)
    cosine = entity_bag_cosines(ctx, pairs)
    parts = folds(ctx)
    weights = _weight_by_kfold(ctx, entity, cosine, parts)
    choice = {
        "config": config,
        "rule": f"{_FOLDS}-fold by query over the training queries, as for the similarity term; the similarity "
        "from each item's bag of entity vectors, exclusions read in its entity texts",
        "weight": weights["weight"],
        "exclusion": _penalty_by_kfold(ctx, _Blend(entity, cosine, _excluded_in_entities(ctx, pairs)), parts, weights),
        "weights": weights,
    }
    path.write_text(json.dumps(choice, indent=2) + "\n", encoding="utf-8")
    log.info("pure entity model chosen by k-fold", extra={k: v for k, v in choice.items() if k != "config"})
    return choice


def saved_entity_similarity_choice(ctx: EvalContext) -> dict[str, Any] | None:
    """The pure entity model's choice the ESCI run saved, for scoring another dataset (the configured weight
    and penalty in a quick run); None when that run made none."""
    if ctx.quick:
        return entity_similarity_choice(ctx)
    path = ctx.models_dir / _ENTITY_SIMILARITY_FILE
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def pure_serving_settings(choice: Mapping[str, Any], encoder: str) -> dict[str, str]:
    """The settings that serve the pure entity model as `choice` weighs it: the similarity from entity bags,
    exclusions read in entity texts."""
    return _serving(choice, encoder, of_entities=True)


@dataclass(frozen=True)
class _Blend:
    """Out-of-sample parts of the served score of every labelled training pair."""

    entity: Scores
    cosine: Scores
    # Whether the item's title (or its entity texts, for the pure model) names what the query excludes.
    excluded: Mapping[tuple[str, str], bool]

    def scores(self, weight: float, penalty: float = 0.0) -> Scores:
        """The served score: the blend of entity score and similarity, less the exclusion penalty."""
        return {
            k: ((1 - weight) * e + weight * min(max(self.cosine[k], 0.0), 1.0)) * (1 - penalty * self.excluded.get(k, False))
            for k, e in self.entity.items()
        }


def _weight_by_kfold(
    ctx: EvalContext, entity: Scores, cosine: Scores, folds: Sequence[tuple[Sequence[str], Sequence[str]]]
) -> dict[str, Any]:
    """The blend weight chosen fold by fold (measured on the held fold) and on all training queries."""
    blend = _Blend(entity, cosine, {})

    def value(weight: float, queries: Sequence[str]) -> float:
        return quality(ctx.labels_of(queries), blend.scores(weight))["ndcg@10"]

    per_fold = []
    for fit_queries, held in folds:
        weight = max(_SIMILARITY_WEIGHTS, key=lambda w: value(w, fit_queries))
        per_fold.append(
            {
                "weight": weight,
                "held_ndcg@10": round(value(weight, held), 4),
                "held_ndcg@10_similarity_only": round(value(1.0, held), 4),
                "held_ndcg@10_entities_only": round(value(0.0, held), 4),
            }
        )
    return {
        "weight": max(_SIMILARITY_WEIGHTS, key=lambda w: value(w, ctx.split.train)),
        "folds": per_fold,
        **{f"mean_{k}": round(float(np.mean([f[k] for f in per_fold])), 4) for k in per_fold[0] if k != "weight"},
    }


def _penalty_by_kfold(
    ctx: EvalContext, blend: _Blend, folds: Sequence[tuple[Sequence[str], Sequence[str]]], weights: Mapping[str, Any]
) -> dict[str, Any]:
    """The exclusion penalty chosen fold by fold (each fold's blend weight as chosen there) and on all
    training queries (the weight served)."""

    def value(weight: float, penalty: float, queries: Sequence[str]) -> float:
        return quality(ctx.labels_of(queries), blend.scores(weight, penalty))["ndcg@10"]

    per_fold = []
    for (fit_queries, held), fold in zip(folds, weights["folds"], strict=True):
        penalty = max(_EXCLUSION_PENALTIES, key=lambda p: value(fold["weight"], p, fit_queries))
        per_fold.append(
            {
                "penalty": penalty,
                "held_ndcg@10": round(value(fold["weight"], penalty, held), 4),
                "held_ndcg@10_without": round(value(fold["weight"], 0.0, held), 4),
            }
        )
    excluding = sorted({q for q, i in blend.excluded if blend.excluded[(q, i)]})
    return {
        "penalty": max(_EXCLUSION_PENALTIES, key=lambda p: value(weights["weight"], p, ctx.split.train)),
        "queries_with_excluded_items": len(excluding),
        "folds": per_fold,
        **{f"mean_{k}": round(float(np.mean([f[k] for f in per_fold])), 4) for k in per_fold[0] if k != "penalty"},
    }


def serving_settings(ctx: EvalContext, run: int) -> dict[str, str]:
    """The settings (similarity weight and encoder, exclusion penalty) seed run `run`'s model is served with,
    as chosen by :func:`similarity_choice` (the encoder fine-tuned with the run's seed when that was chosen
    and none is saved)."""
    choice = similarity_choice(ctx)
    encoder = ctx.settings.similarity.encoder
    if choice["encoder"] == _FINE_TUNED:
        encoder = str(similarity_encoder.esci_encoder(ctx, _seed(ctx, run), _suffix(ctx, run)))
    return _serving(choice, encoder)


def saved_serving_settings(ctx: EvalContext, model_dir: Path) -> dict[str, str]:
    """The settings the ESCI run chose, for serving its model at `model_dir` elsewhere (a fine-tuned encoder
    is the one trained with that model's seed); the configured ones in a quick run."""
    if ctx.quick:
        return _serving(similarity_choice(ctx), ctx.settings.similarity.encoder)
    path = ctx.models_dir / _SIMILARITY_FILE
    if not path.is_file():
        raise EntrelError(f"no similarity term chosen at {path}: run `entrel eval --methods entrel` on ESCI first")
    choice = json.loads(path.read_text(encoding="utf-8"))
    if choice.get("encoder") != _FINE_TUNED:
        return _serving(choice, ctx.settings.similarity.encoder)
    encoder = ctx.models_dir / (similarity_encoder.ENCODER_DIR + model_dir.name.removeprefix(ESCI_MODEL_DIR))
    if not (encoder / MODEL_INFO_FILE).is_file():
        raise EntrelError(f"no fine-tuned encoder at {encoder}: run `entrel eval --methods entrel` on ESCI first")
    return _serving(choice, str(encoder))


def _serving(choice: Mapping[str, Any], encoder: str, of_entities: bool = False) -> dict[str, str]:
    """The settings that serve `choice`'s weight and penalty, pinned to what it was chosen for (item-text
    vectors and titles, or entity bags and entity texts), whatever --set says."""
    return {
        "similarity.weight": str(choice["weight"]),
        "similarity.encoder": encoder,
        "similarity.source": "entities" if of_entities else "item_text",
        "exclusion.penalty": str(choice["exclusion"]["penalty"]),
        "exclusion.reads": "entities" if of_entities else "title",
    }


def _suffix(ctx: EvalContext, run: int) -> str:
    return "-quick" if ctx.quick else "" if run == 0 else f"-seed-{_seed(ctx, run)}"


def _model_dir(ctx: EvalContext, run: int) -> Path:
    return ctx.models_dir / f"{ESCI_MODEL_DIR}{_suffix(ctx, run)}"


def esci_model(ctx: EvalContext, run: int = 0) -> tuple[Path, dict[str, Any], bool]:
    """The ESCI entity model of seed run `run` (trained and saved when there is none): folder, info, reused."""
    directory = _model_dir(ctx, run)
    selection = recipe_selection(ctx) if not ctx.quick else _quick_selection(ctx)
    config = {**_config(ctx), "seed": _seed(ctx, run), "chosen": selection["chosen"]}
    info = reusable_info(directory, config, ctx.retrain)
    if info is not None:
        return directory, info, True
    encoder, seconds = train_recipe(ctx, selection["chosen"], ctx.labels_of(ctx.split.train), _seed(ctx, run))
    info = {
        "description": "entrel query-entity cross-encoder for ESCI (1 = the query asks for the entity, 0.5 = "
        "neutral, 0 = contradicts), recipe and aggregation weights chosen by k-fold cross-validation over the "
        "training queries. Serve it with --set model.name_or_path=<this folder> plus serve_overrides.",
        "base_model": ctx.settings.train.base_model,
        "training_seconds": round(seconds, 1),
        "data": {"esci": str(esci.default_data_dir()), "synthetic_queries": _SYNTHETIC_QUERIES[ctx.quick]},
        "split": ctx.split.describe(),
        "recipe": {"chosen": selection["chosen"], "selection": {k: v for k, v in selection.items() if k != "config"}},
        "serve_overrides": selection["serve_overrides"],
        "config": config,
    }
    return directory, {**info, "fingerprint": save_model(encoder, directory, info)}, False


def _quick_selection(ctx: EvalContext) -> dict[str, Any]:
    """CI: nothing chosen; the label-pairs recipe with default weights."""
    return {"chosen": CANDIDATES[1].name, "serve_overrides": {}, "fitted_weights": False}


def served(
    ctx: EvalContext,
    model_dir: Path,
    labels: Sequence[Label],
    serving_overrides: Mapping[str, str],
    logic: Mapping[str, str] | None = None,
) -> tuple[Explained, dict[str, Any]]:
    """Scores of the judged items through nightly snapshot + `entrel serve` + gRPC, with what the cache did.

    `logic` overrides the aggregation settings; by default those in the
    model's card (``serve_overrides``), so a model is served as it was chosen.
    """
    if logic is None:
        card = json.loads((model_dir / "entrel_model.json").read_text(encoding="utf-8"))
        logic = card.get("serve_overrides", {})
    directory = Path(ctx.settings.data_dir) / "eval" / "entrel"
    queries = list(dict.fromkeys(label.query for label in labels))
    overrides = esci.write_entrel_inputs(ctx.items.values(), queries, directory / "input") | {
        "data_dir": str(directory),
        "model.name_or_path": str(model_dir),
        "nightly.use_miss_log": "false",
        "server.log_misses": "false",
        "server.default_deadline_ms": str(_DEADLINE_MS),
        **serving_overrides,
        **logic,
    }
    settings = ctx.settings.replace(**overrides)
    report = nightly.run(settings, progress=ctx.progress)
    args = [*ctx.config_args, *(f"--set={key}={value}" for key, value in overrides.items())]
    scores: dict[tuple[str, str], float] = {}
    entity_scores: dict[tuple[str, str], float] = {}
    similarities: dict[tuple[str, str], float] = {}
    entities: dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]] = {}
    totals = {"cache_hits": 0, "cache_misses": 0, "live_scored_pairs": 0, "prior_pairs": 0}
    started = time.perf_counter()
    with serving(args, directory / "server.log") as server, RelevanceClient(server.address, _DEADLINE_MS / 1000) as client:
        for query in queries:
            ids = [label.item_id for label in labels if label.query == query]
            response = client.score(query, ids, explain=True)
            for key in totals:
                totals[key] += getattr(response.metadata, key)
            for item in response.items:
                scores[(query, item.item_id)] = item.score
                entity_scores[(query, item.item_id)] = item.entity_score
                similarities[(query, item.item_id)] = item.similarity
                entities[(query, item.item_id)] = (
                    tuple(e.type for e in item.entities),
                    np.array([e.score for e in item.entities], dtype=np.float32),
                )
    if server.exit_code != 0:
        raise RuntimeError(f"entrel serve exited with {server.exit_code}; see {directory / 'server.log'}")
    looked_up = totals["cache_hits"] + totals["cache_misses"]
    serving_report = {
        "snapshot_id": report.snapshot_id,
        "snapshot_pairs": report.counts.get("pairs"),
        "nightly_seconds": round(sum(report.seconds.values()), 1),
        "serve_seconds": round(time.perf_counter() - started, 1),
        "cache_hit_rate": round(totals["cache_hits"] / looked_up, 4) if looked_up else None,
        **totals,
    }
    return Explained(scores, entities, entity_scores, similarities), serving_report


def _pretraining_config(ctx: EvalContext) -> dict[str, Any]:
    """What the label-free pretraining depends on: a saved one with another configuration is not reused."""
    cfg = ctx.settings.train
    return {
        "format_version": _FORMAT_VERSION,
        "base_model": cfg.base_model,
        "synthetic_queries": _SYNTHETIC_QUERIES[ctx.quick],
        "train": {k: getattr(cfg, k) for k in ("pretrain_epochs", "pretrain_batch_pairs", "learning_rate")},
        "max_length": ctx.settings.model.max_length,
        "extraction": repr(ctx.settings.extraction),
        "catalog_items": len(ctx.items),
    }


def _config(ctx: EvalContext) -> dict[str, Any]:
    """What the selection and the saved models depend on: one with another configuration is not reused."""
    return {
        **_pretraining_config(ctx),
        "logic": repr(ctx.settings.logic),
        "candidates": [c.name for c in CANDIDATES],
        "split": ctx.split.describe(),
    }


def _variants(ctx: EvalContext, first: Explained, logic: LogicSettings) -> dict[str, Scores]:
    """Ablations at inference on the first seed's served entity scores."""
    defaults = ctx.settings.logic
    variants: dict[str, Scores] = {"default_weights": first.aggregate(defaults)}
    other = "noisy_or" if logic.coverage == "max" else "max"
    variants[f"coverage={other}"] = first.aggregate(
        ctx.settings.replace(**(logic_overrides(logic) | {"logic.coverage": other})).logic
    )
    variants["compatibility_only"] = first.aggregate(
        ctx.settings.replace(**(logic_overrides(logic) | {"logic.coverage_weight": "0"})).logic
    )
    types = sorted({t for types, _ in first.entities.values() for t in types})
    variants |= {f"without_{t}": first.aggregate(logic, without_type=t) for t in types}
    return variants


@method("entrel")
def entrel_entity_model(ctx: EvalContext) -> MethodResult:
    """The entity model, served: nightly snapshot, gRPC server, soft logic; one run per seed; ablations as variants."""
    runs: list[Scores] = []
    infos: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    first: Explained | None = None
    similarity = similarity_choice(ctx)
    for run in range(1 if ctx.quick else _SEEDS):
        directory, info, reused = esci_model(ctx, run)
        explained, report = served(ctx, directory, ctx.test_labels, serving_settings(ctx, run))
        record_metrics(
            directory,
            {"test_served": {k: round(v, 4) for k, v in quality(ctx.test_labels, explained.item_scores).items()}},
        )
        runs.append(explained.item_scores)
        infos.append({"model": str(directory), "fingerprint": info["fingerprint"], "reused": reused, **report})
        reports.append(info)
        first = first or explained
    assert first is not None
    overrides = reports[0].get("serve_overrides", {})
    logic = ctx.settings.replace(**overrides).logic
    weight = float(similarity["weight"])
    variants = {
        "entity_aggregate": first.entity_scores,
        # The served blend with exclusions off (penalty 0).
        "without_exclusions": {
            k: (1 - weight) * first.entity_scores[k] + weight * first.similarities[k] for k in first.entity_scores
        },
        **_variants(ctx, first, logic),
    }
    # The pure entity model, served from its own snapshot (the first seed's model; its weight is the choice's).
    pure = entity_similarity_choice(ctx)
    pure_run, pure_report = served(
        ctx, Path(infos[0]["model"]), ctx.test_labels, pure_serving_settings(pure, ctx.settings.similarity.encoder)
    )
    variants["pure_entities"] = pure_run.item_scores
    selection = reports[0]["recipe"]["selection"] if not ctx.quick else {}
    if not ctx.quick and reports[0]["recipe"]["chosen"] != CANDIDATES[0].name:
        # The label-free stage alone, with the served weights (scored directly: no snapshot).
        rows = entity_rows(ctx, scorer_of(ctx, _pretrained(ctx)[0]), ctx.test_labels)
        variants[f"candidate={CANDIDATES[0].name}"] = item_scores(rows, logic)
    return MethodResult(
        tuple(runs),
        {
            "recipe": reports[0]["recipe"]["chosen"],
            "seeds": [_seed(ctx, r) for r in range(len(runs))],
            "train_seconds": round(float(np.mean([r["training_seconds"] for r in reports])), 1),
            "selection": selection,
            "serve_overrides": overrides,
            "similarity": {k: v for k, v in similarity.items() if k != "config"},
            "pure_entities": {**{k: v for k, v in pure.items() if k != "config"}, "served_run": pure_report},
            "served_runs": infos,
        },
        variants,
    )
