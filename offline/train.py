"""Train job: fine-tune the query-entity cross-encoder on a catalog and graded labels.

Two stages, both through :func:`offline.training.trainer.fit`:

1. pretraining on query-entity pairs generated from the catalog's own
   entities (which entities a query states, which contradict it);
2. soft-logic fine-tuning: the t-norm of an item's entity scores is fitted
   to the item's graded label, so entities learn from item labels.

The result is a model directory (weights, fingerprint, model card) that
``entrel nightly`` and ``entrel serve`` use via ``model.name_or_path``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from entrel.config import Settings
from offline import extract
from offline.training.examples import item_examples, read_labels, synthetic_entity_examples
from offline.training.model_dir import save_model
from offline.training.trainer import FitReport, fit, trainable_cross_encoder

__all__ = ["TrainReport", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainReport:
    model_dir: str
    fingerprint: str
    pretrain: FitReport
    finetune: FitReport
    seconds: float


def run(settings: Settings, output: str | None = None, progress: bool = True) -> TrainReport:
    """Train on the configured catalog and labels; save to `output` (default: model.name_or_path)."""
    started = time.perf_counter()
    cfg = settings.train
    target = Path(output or settings.model.name_or_path)
    catalog = extract.run(settings, progress=progress)
    labels = read_labels(cfg.labels)
    entities_by_item = {item.item_id: es for item, es in zip(catalog.items, catalog.entities, strict=True)}
    encoder = trainable_cross_encoder(cfg.base_model, settings.model.max_length, cfg.seed)
    common = dict(max_length=settings.model.max_length, seed=cfg.seed, progress=progress, learning_rate=cfg.learning_rate)
    pretrain = fit(
        encoder,
        synthetic_entity_examples(catalog.entities, cfg.synthetic_queries, seed=cfg.seed),
        epochs=cfg.pretrain_epochs,
        batch_pairs=cfg.pretrain_batch_pairs,
        description="pretrain (query, entity)",
        **common,
    )
    finetune = fit(
        encoder,
        item_examples(labels, entities_by_item),
        epochs=cfg.epochs,
        batch_pairs=cfg.batch_pairs,
        tnorm_name=settings.logic.tnorm,
        description=f"soft-logic ({settings.logic.tnorm})",
        **common,
    )
    seconds = time.perf_counter() - started
    fingerprint = save_model(
        encoder,
        target,
        {
            "description": "Query-entity cross-encoder trained by entrel (pretraining on generated pairs, "
            "then soft-logic fine-tuning on graded item labels).",
            "base_model": cfg.base_model,
            "training_seconds": round(seconds, 1),
            "data": {"catalog": settings.catalog.path, "labels": cfg.labels, "labelled_pairs": len(labels)},
            "stages": {"pretrain": asdict(pretrain), "finetune": asdict(finetune), "tnorm": settings.logic.tnorm},
        },
    )
    log.info("model saved", extra={"model_dir": str(target), "fingerprint": fingerprint, "seconds": round(seconds, 1)})
    return TrainReport(str(target), fingerprint, pretrain, finetune, seconds)
