"""entrel's own entity model on ESCI, and the `entrel` row scored the way the server scores.

Training never sees a test query. Stages (both :func:`offline.training.trainer.fit`):

1. pretraining on query-entity pairs generated from the ESCI catalog's own
   entities (:func:`synthetic_entity_examples`: which entities a query
   states, which contradict it); label-free;
1b. query-entity pairs of the real training queries read off their item
   labels (:func:`label_entity_examples`: an exact item's entities fit, an
   entity only ever on irrelevant items does not);
2. soft-logic fine-tuning: the t-norm of an item's entity scores is fitted
   to the item's graded label (the loss is on the aggregated item score).

Candidates (:data:`CANDIDATES`, combinations of the stages) train on the 80
fit queries and are compared on the 20 validation queries; soft-logic alone
is the ablation without pretraining. The winner's recipe is
retrained on all 100 training queries and saved as var/models/entrel-esci
(fingerprint + card), reused while its card's configuration matches
(``--retrain`` forces it).

The ``entrel`` row goes through the product's own path: the ESCI catalog is
written as an entrel JSONL catalog, the test queries as its query log; the
nightly job extracts entities, precomputes the queries' candidate entities
into an LMDB snapshot and promotes it; ``entrel serve`` runs as a
subprocess and every test query's judged items are scored over gRPC, with
explanations (pairs the nightly did not precompute are scored live).
Variant rows: ``quantize=int8`` scores the same model with int8 Linear
layers (the CPU option of the live path); the ablation rows re-aggregate
the served per-entity scores with another t-norm, or without one entity
type; the candidates' rows score the test queries directly (scorer + the
same aggregator, no snapshot).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entrel.config import Settings
from entrel.logic import PAD, TNORMS, Aggregator
from entrel.scoring import MODEL_INFO_FILE, CrossEncoderScorer
from entrel.service.client import RelevanceClient
from entrel.service.process import serving
from entrel.text import normalize
from offline import esci, nightly
from offline.evaluate import EvalContext, MethodResult, Scores, method, quality
from offline.training.examples import Label, item_examples, label_entity_examples, synthetic_entity_examples
from offline.training.model_dir import record_metrics, reusable_info, save_model
from offline.training.trainer import fit, trainable_cross_encoder

__all__ = ["CANDIDATES", "Explained", "entrel_entity_model", "esci_model"]

log = logging.getLogger(__name__)

_MODEL_DIR = "entrel-esci"
_CANDIDATES_DIR = "entrel-esci-candidates"
_PRETRAINED_DIR = "entrel-esci-pretrained"
# Generated queries for pretraining (each gives ~17 query-entity pairs); quick runs use fewer.
_SYNTHETIC_QUERIES = {False: 1500, True: 500}
# Bump when examples or stages change: saved models then retrain.
_FORMAT_VERSION = 1
# Scoring a query's judged items live can take a while on CPU: no deadline should cut it short.
_DEADLINE_MS = 600_000


@dataclass(frozen=True)
class Candidate:
    name: str
    # Stage 1: generated query-entity pairs from the catalog.
    pretrained: bool
    # Stage 1b: real queries' query-entity pairs read off item labels.
    label_pairs: bool
    # Stage 2: soft-logic fine-tuning on item labels.
    soft_logic: bool


CANDIDATES = (
    Candidate("pretrained", pretrained=True, label_pairs=False, soft_logic=False),
    Candidate("pretrained+label-pairs", pretrained=True, label_pairs=True, soft_logic=False),
    Candidate("pretrained+soft-logic", pretrained=True, label_pairs=False, soft_logic=True),
    Candidate("pretrained+label-pairs+soft-logic", pretrained=True, label_pairs=True, soft_logic=True),
    Candidate("soft-logic-only", pretrained=False, label_pairs=False, soft_logic=True),
)


EntityRows = dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]]


def _aggregate(entities: EntityRows, settings: Settings, tnorm_name: str, without_type: str | None = None) -> Scores:
    """Item scores by `tnorm_name` over each item's entity scores, leaving out `without_type`."""
    rows = [[s for t, s in zip(types, scores, strict=True) if t != without_type] for types, scores in entities.values()]
    matrix = np.full((len(rows), max((len(r) for r in rows), default=0)), PAD, dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i, : len(row)] = row
    aggregator = Aggregator(tnorm_name, settings.logic.prior, settings.logic.match_threshold)
    values = aggregator(matrix, np.array([len(r) for r in rows]))
    return dict(zip(entities, values.scores.astype(float).tolist(), strict=True))


@dataclass(frozen=True)
class Explained:
    """Per judged (query, item): its score, and its entities' types and scores."""

    item_scores: dict[tuple[str, str], float]
    entities: EntityRows

    def aggregate(self, settings: Settings, tnorm_name: str, without_type: str | None = None) -> Scores:
        """Item scores by another t-norm, or without one entity type."""
        return _aggregate(self.entities, settings, tnorm_name, without_type)


def _fit_settings(ctx: EvalContext) -> dict[str, Any]:
    cfg = ctx.settings.train
    return {
        "max_length": ctx.settings.model.max_length,
        "seed": cfg.seed,
        "progress": ctx.progress,
        "learning_rate": cfg.learning_rate,
    }


def _pretrained(ctx: EvalContext) -> tuple[Path, float]:
    """Stage 1 (label-free, so shared by every candidate and the final model): its directory and seconds."""
    directory = ctx.models_dir / (f"{_PRETRAINED_DIR}-quick" if ctx.quick else _PRETRAINED_DIR)
    config = _pretraining_config(ctx)
    info = reusable_info(directory, config, ctx.retrain)
    if info is not None:
        return directory, info["training_seconds"]
    cfg = ctx.settings.train
    encoder = trainable_cross_encoder(cfg.base_model, ctx.settings.model.max_length, cfg.seed)
    entities = ctx.entities
    examples = synthetic_entity_examples(list(entities.values()), _SYNTHETIC_QUERIES[ctx.quick], seed=cfg.seed)
    report = fit(
        encoder,
        examples,
        epochs=cfg.pretrain_epochs,
        batch_pairs=cfg.pretrain_batch_pairs,
        description="pretrain (query, entity) on ESCI",
        **_fit_settings(ctx),
    )
    save_model(
        encoder,
        directory,
        {
            "description": "entrel entity model, pretraining stage only: query-entity pairs generated from the "
            "ESCI catalog's entities (no labels).",
            "base_model": cfg.base_model,
            "training_seconds": round(report.seconds, 1),
            "data": {"synthetic_queries": _SYNTHETIC_QUERIES[ctx.quick], "pairs": report.pairs_per_epoch},
            "config": config,
        },
    )
    return directory, report.seconds


def _train(ctx: EvalContext, candidate: Candidate, labels: Sequence[Label]) -> tuple[Any, float]:
    """A model of `candidate`'s recipe trained on `labels`; the seconds its stages took."""
    cfg = ctx.settings.train
    start, seconds = _pretrained(ctx) if candidate.pretrained else (cfg.base_model, 0.0)
    encoder = trainable_cross_encoder(str(start), ctx.settings.model.max_length, cfg.seed)
    if candidate.label_pairs:
        report = fit(
            encoder,
            label_entity_examples(labels, ctx.entities),
            epochs=1,
            batch_pairs=cfg.pretrain_batch_pairs,
            description=f"label pairs (query, entity) {candidate.name}",
            **_fit_settings(ctx),
        )
        seconds += report.seconds
    if candidate.soft_logic:
        report = fit(
            encoder,
            item_examples(labels, ctx.entities),
            epochs=cfg.epochs,
            batch_pairs=cfg.batch_pairs,
            tnorm_name=ctx.settings.logic.tnorm,
            description=f"soft-logic ({ctx.settings.logic.tnorm}) {candidate.name}",
            **_fit_settings(ctx),
        )
        seconds += report.seconds
    return encoder, seconds


def _direct(ctx: EvalContext, model_dir: Path, labels: Sequence[Label], quantize: str = "none") -> Explained:
    """Entity scores of the judged items from the model itself (no snapshot): for choices and candidate rows."""
    scorer = CrossEncoderScorer(_model_settings(ctx, model_dir, quantize))
    keys = [(label.query, label.item_id) for label in labels]
    entities = [ctx.entities[label.item_id] for label in labels]
    pairs = sorted({(normalize(q), e.render()) for (q, _), es in zip(keys, entities, strict=True) for e in es})
    score_of = dict(zip(pairs, scorer.score(pairs).tolist(), strict=True))
    explained = {
        key: (
            tuple(e.type.value for e in es),
            np.array([score_of[(normalize(key[0]), e.render())] for e in es], dtype=np.float32),
        )
        for key, es in zip(keys, entities, strict=True)
    }
    return Explained(_aggregate(explained, ctx.settings, ctx.settings.logic.tnorm), explained)


def _model_settings(ctx: EvalContext, model_dir: Path, quantize: str = "none") -> Any:
    return ctx.settings.replace(**{"model.name_or_path": str(model_dir), "model.quantize": quantize}).model


def _served(ctx: EvalContext, model_dir: Path, labels: Sequence[Label]) -> tuple[Explained, dict[str, Any]]:
    """Scores of the judged items through nightly snapshot + `entrel serve` + gRPC, with what the cache did."""
    directory = Path(ctx.settings.data_dir) / "eval" / "entrel"
    queries = list(dict.fromkeys(label.query for label in labels))
    overrides = esci.write_entrel_inputs(ctx.items.values(), queries, directory / "input") | {
        "data_dir": str(directory),
        "model.name_or_path": str(model_dir),
        "nightly.use_miss_log": "false",
        "server.log_misses": "false",
        "server.default_deadline_ms": str(_DEADLINE_MS),
    }
    settings = ctx.settings.replace(**overrides)
    report = nightly.run(settings, progress=ctx.progress)
    args = [*ctx.config_args, *(f"--set={key}={value}" for key, value in overrides.items())]
    item_scores: dict[tuple[str, str], float] = {}
    entities: EntityRows = {}
    totals = {"cache_hits": 0, "cache_misses": 0, "live_scored_pairs": 0, "prior_pairs": 0}
    started = time.perf_counter()
    with serving(args, directory / "server.log") as server, RelevanceClient(server.address, _DEADLINE_MS / 1000) as client:
        for query in queries:
            ids = [label.item_id for label in labels if label.query == query]
            response = client.score(query, ids, explain=True)
            for key in totals:
                totals[key] += getattr(response.metadata, key)
            for item in response.items:
                item_scores[(query, item.item_id)] = item.score
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
    return Explained(item_scores, entities), serving_report


def _pretraining_config(ctx: EvalContext) -> dict[str, Any]:
    """What the label-free pretraining depends on: a saved one with another configuration is not reused."""
    cfg = ctx.settings.train
    return {
        "format_version": _FORMAT_VERSION,
        "base_model": cfg.base_model,
        "synthetic_queries": _SYNTHETIC_QUERIES[ctx.quick],
        "train": {k: getattr(cfg, k) for k in ("pretrain_epochs", "pretrain_batch_pairs", "learning_rate", "seed")},
        "max_length": ctx.settings.model.max_length,
        "extraction": repr(ctx.settings.extraction),
        "catalog_items": len(ctx.items),
    }


def _config(ctx: EvalContext) -> dict[str, Any]:
    """What the saved models depend on: one with another configuration is not reused."""
    cfg = ctx.settings.train
    return {
        **_pretraining_config(ctx),
        "train": {k: getattr(cfg, k) for k in ("pretrain_epochs", "pretrain_batch_pairs", "epochs", "batch_pairs", "learning_rate", "seed")},
        "tnorm": ctx.settings.logic.tnorm,
        "candidates": [c.name for c in CANDIDATES],
        "split": ctx.split.describe(),
    }


def _choose(ctx: EvalContext) -> tuple[Candidate, dict[str, Any]]:
    """Train every candidate on the fit queries, save it, and pick the best on validation nDCG@10."""
    fit_labels, validation = ctx.labels_of(ctx.split.fit), ctx.labels_of(ctx.split.validation)
    values: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for candidate in CANDIDATES:
        encoder, seconds[candidate.name] = _train(ctx, candidate, fit_labels)
        directory = ctx.models_dir / _CANDIDATES_DIR / candidate.name
        save_model(
            encoder,
            directory,
            {"description": f"entrel ESCI candidate {candidate.name}, trained on the fit queries", "config": _config(ctx)},
        )
        values[candidate.name] = round(quality(validation, _direct(ctx, directory, validation).item_scores)["ndcg@10"], 4)
        log.info("candidate trained", extra={"candidate": candidate.name, "validation_ndcg@10": values[candidate.name]})
    best = max(CANDIDATES, key=lambda c: values[c.name])
    return best, {"validation_ndcg_at_10": values, "candidate_train_seconds": {k: round(v, 1) for k, v in seconds.items()}}


def esci_model(ctx: EvalContext) -> tuple[Path, dict[str, Any], bool]:
    """The ESCI entity model (trained, chosen on validation and saved when there is none): folder, info, reused."""
    directory = ctx.models_dir / _MODEL_DIR
    info = None if ctx.quick else reusable_info(directory, _config(ctx), ctx.retrain)
    if info is not None:
        return directory, info, True
    return directory, _train_and_save(ctx, directory), False


def _train_and_save(ctx: EvalContext, directory: Path) -> dict[str, Any]:
    chosen, selection = _choose(ctx)
    encoder, seconds = _train(ctx, chosen, ctx.labels_of(ctx.split.train))
    labelled = item_examples(ctx.labels_of(ctx.split.train), ctx.entities)
    info = {
        "description": "entrel query-entity cross-encoder for ESCI: pretrained on generated query-entity pairs "
        "and/or fine-tuned through the soft-logic aggregate on the training queries' item labels "
        "(recipe chosen on the validation queries). Serve it with --set model.name_or_path=<this folder>.",
        "base_model": ctx.settings.train.base_model,
        "training_seconds": round(seconds, 1),
        "data": {
            "esci": str(esci.default_data_dir()),
            "labelled_items": len(labelled) if chosen.soft_logic else 0,
            "synthetic_queries": _SYNTHETIC_QUERIES[ctx.quick] if chosen.pretrained else 0,
        },
        "split": ctx.split.describe(),
        "stages": {"recipe": chosen.name, "tnorm": ctx.settings.logic.tnorm, **selection},
        "config": _config(ctx),
    }
    return {**info, "fingerprint": save_model(encoder, directory, info)}


def _variants(ctx: EvalContext, served: Explained) -> dict[str, Scores]:
    """Ablations at inference: other t-norms, and each entity type left out (served entity scores)."""
    settings = ctx.settings
    variants = {f"tnorm={name}": served.aggregate(settings, name) for name in TNORMS if name != settings.logic.tnorm}
    types = sorted({t for types, _ in served.entities.values() for t in types})
    variants |= {f"without_{t}": served.aggregate(settings, settings.logic.tnorm, without_type=t) for t in types}
    return variants


def _quick(ctx: EvalContext) -> MethodResult:
    """CI: the served path with a model pretrained on fewer generated queries; nothing chosen."""
    directory = ctx.models_dir / f"{_MODEL_DIR}-quick"
    encoder, seconds = _train(ctx, CANDIDATES[0], ctx.labels_of(ctx.split.train))
    save_model(encoder, directory, {"description": "entrel ESCI quick-run model (CI)", "config": _config(ctx)})
    served, serving_report = _served(ctx, directory, ctx.test_labels)
    extra = {"recipe": CANDIDATES[0].name, "train_seconds": round(seconds, 1), **serving_report}
    return MethodResult((served.item_scores,), extra, _variants(ctx, served))


@method("entrel")
def entrel_entity_model(ctx: EvalContext) -> MethodResult:
    """The entity model, served: nightly snapshot, gRPC server, soft logic; ablations as variants."""
    if ctx.quick:
        return _quick(ctx)
    directory, info, reused = esci_model(ctx)
    served, serving_report = _served(ctx, directory, ctx.test_labels)
    direct = _direct(ctx, directory, ctx.test_labels)
    gap = max(abs(served.item_scores[k] - direct.item_scores[k]) for k in served.item_scores)
    record_metrics(
        directory,
        {
            "test_served": {k: round(v, 4) for k, v in quality(ctx.test_labels, served.item_scores).items()},
            "test_queries": len(ctx.split.test),
        },
    )
    variants = _variants(ctx, served)
    # The live path's CPU option: same model, Linear layers in int8.
    variants["quantize=int8"] = _direct(ctx, directory, ctx.test_labels, quantize="int8").item_scores
    for candidate in CANDIDATES:
        candidate_dir = ctx.models_dir / _CANDIDATES_DIR / candidate.name
        if (candidate_dir / MODEL_INFO_FILE).is_file():
            variants[f"candidate={candidate.name}"] = _direct(ctx, candidate_dir, ctx.test_labels).item_scores
    stages = info["stages"]
    return MethodResult(
        (served.item_scores,),
        {
            "recipe": stages["recipe"],
            "train_seconds": info["training_seconds"],
            "validation_ndcg_at_10": stages["validation_ndcg_at_10"],
            "candidate_train_seconds": stages["candidate_train_seconds"],
            "model": str(directory),
            "fingerprint": info["fingerprint"],
            "reused_saved_model": reused,
            "served_vs_direct_max_abs_diff": round(gap, 6),
            **serving_report,
        },
        variants,
    )
