"""Train job: fine-tune the query-entity cross-encoder on a catalog and graded labels.

The recipe of :mod:`entrel.offline.training.recipe`: pretraining on (query,
entity) outcomes generated from the catalog's own entities (which a query
asks for, which are neutral, which contradict it), then the outcomes of
the labelled queries' entities read off their graded item labels.

The result is a model directory (weights, fingerprint, model card) that
``entrel nightly`` and ``entrel serve`` use via ``model.name_or_path``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from entrel.catalog import item_text, iter_items, read_catalog
from entrel.config import Settings
from entrel.offline import extract
from entrel.offline.training.examples import read_labels
from entrel.offline.training.model_dir import save_model
from entrel.offline.training.recipe import pretrain, train_entity_model
from entrel.offline.training.similarity_encoder import EncoderRecipe, graded_texts, train_and_save_encoder
from entrel.offline.training.trainer import FitReport

__all__ = ["TrainReport", "run", "run_encoder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainReport:
    model_dir: str
    fingerprint: str
    pretraining: FitReport
    label_pairs: FitReport
    seconds: float


def run(settings: Settings, output: str | None = None, progress: bool = True) -> TrainReport:
    """Train on the configured catalog and labels; save to `output` (default: model.name_or_path)."""
    started = time.perf_counter()
    cfg = settings.train
    target = Path(output or settings.model.name_or_path)
    catalog = extract.run(settings, progress=progress)
    labels = read_labels(cfg.labels)
    entities_by_item = {item.item_id: es for item, es in zip(catalog.items, catalog.entities, strict=True)}
    encoder, pretraining = pretrain(settings, catalog.entities, cfg.seed, progress)
    stages = train_entity_model(settings, encoder, cfg.seed, labels=labels, entities_by_item=entities_by_item, progress=progress)
    label_pairs = stages.label_pairs or FitReport(0, 0, 0, 0.0, float("nan"))
    seconds = time.perf_counter() - started
    fingerprint = save_model(
        encoder,
        target,
        {
            "description": "Query-entity cross-encoder trained by entrel: 1 = the query asks for the entity, "
            "0.5 = neutral, 0 = contradicts (pretraining on generated outcomes, then label pairs).",
            "base_model": cfg.base_model,
            "training_seconds": round(seconds, 1),
            "data": {"catalog": settings.catalog.path, "labels": cfg.labels, "labelled_pairs": len(labels)},
            "stages": {"pretrain": asdict(pretraining), "label_pairs": asdict(label_pairs)},
        },
    )
    log.info("model saved", extra={"model_dir": str(target), "fingerprint": fingerprint, "seconds": round(seconds, 1)})
    return TrainReport(str(target), fingerprint, pretraining, label_pairs, seconds)


def run_encoder(settings: Settings, output: str | None = None, progress: bool = True) -> tuple[Path, str]:
    """Fine-tune the similarity term's bi-encoder (``similarity.encoder``) on the configured catalog's graded
    labels; save to `output` (default: ``<data_dir>/models/similarity-encoder``). Returns the folder and
    fingerprint; serve it with ``similarity.encoder=<folder>`` (nightly and server alike)."""
    target = Path(output or Path(settings.data_dir) / "models" / "similarity-encoder")
    texts = {item.item_id: item_text(item) for item in iter_items(read_catalog(settings.catalog))}
    labels = [label for label in read_labels(settings.train.labels) if label.item_id in texts]
    card = {
        "description": "Bi-encoder of entrel's similarity term, fine-tuned on graded (query, item) labels "
        "(CoSENT within each query). Serve it with similarity.encoder=<this folder>.",
        "data": {"catalog": settings.catalog.path, "labels": settings.train.labels},
    }
    recipe = EncoderRecipe(max_length=settings.similarity.max_length)
    fingerprint = train_and_save_encoder(
        settings.similarity.encoder, graded_texts(labels, texts), recipe, settings.train.seed, target, card, progress
    )
    return target, fingerprint
