"""Fine-tuning the similarity term's bi-encoder on graded (query, item) labels.

The similarity term (:mod:`entrel.scoring.similarity`) is a cosine between
the query's and the item text's vectors, so its item vectors stay
precomputable by the nightly job whatever encoder makes them. Zero-shot,
the encoder knows topics but not what a shop means by a match; here it
learns, from the labelled queries, to order the judged items of one query
as their grades do.

Loss: CoSENT (the pairwise log-sum-exp of ``scale * (cos_j - cos_i)`` over
every pair of one query's items with grade_i > grade_j). One step is one
query with all its judged items, so only within-query order is learned
(which is what nDCG measures) and no item is compared with another
query's.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from entrel.offline.training.examples import Label
from entrel.offline.training.model_dir import save_model
from entrel.scoring import resolve_model_path

__all__ = ["EncoderRecipe", "GradedText", "fine_tune_encoder", "graded_texts", "train_and_save_encoder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradedText:
    query: str
    # The item's text as the similarity term encodes it (entrel.catalog.item_text).
    text: str
    # 0 irrelevant .. 3 exact.
    grade: int


@dataclass(frozen=True)
class EncoderRecipe:
    """The settings of one fine-tuning run (recorded in the model card)."""

    epochs: int = 1
    learning_rate: float = 2e-5
    # Cosine differences are multiplied by this before the log-sum-exp (CoSENT's usual 20).
    scale: float = 20.0
    # Warm-up over this share of the steps, then linear decay to zero.
    warmup_share: float = 0.1
    max_length: int = 128


def _by_query(examples: Sequence[GradedText]) -> list[list[GradedText]]:
    """The examples of each query that has at least two grades (a query with one grade teaches no order)."""
    groups: dict[str, list[GradedText]] = defaultdict(list)
    for example in examples:
        groups[example.query].append(example)
    return [group for _, group in sorted(groups.items()) if len({e.grade for e in group}) > 1]


def _cosent(cosines: torch.Tensor, grades: torch.Tensor, scale: float) -> torch.Tensor:
    ordered = grades[:, None] > grades[None, :]
    margins = scale * (cosines[None, :] - cosines[:, None])[ordered]
    return torch.logsumexp(torch.cat([margins.new_zeros(1), margins]), dim=0)


def fine_tune_encoder(
    base: str, examples: Sequence[GradedText], recipe: EncoderRecipe, seed: int, progress: bool = True
) -> tuple[Any, dict[str, Any]]:
    """A sentence-transformers bi-encoder fine-tuned from `base` on `examples`, and a report of the run."""
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = SentenceTransformer(base, device="cpu", local_files_only=True)
    model.max_seq_length = recipe.max_length
    groups = _by_query(examples)
    steps = recipe.epochs * len(groups)
    if not steps:
        raise ValueError("fine-tuning the encoder needs a query with at least two different grades")
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    warmup = max(1, int(steps * recipe.warmup_share))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / steps)
    )
    started = time.perf_counter()
    losses: list[float] = []
    model.train()
    with tqdm(total=steps, desc="fine-tuning encoder", unit="query", disable=not progress) as bar:
        for _ in range(recipe.epochs):
            for group in rng.sample(groups, len(groups)):
                features = model.preprocess([group[0].query, *(e.text for e in group)])
                vectors = F.normalize(model(features)["sentence_embedding"], dim=-1)
                grades = torch.tensor([e.grade for e in group], dtype=torch.float32)
                loss = _cosent(vectors[1:] @ vectors[0], grades, recipe.scale)
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                losses.append(loss.item())
                bar.update()
    model.eval()
    tail = losses[-max(1, len(groups) // 5) :]
    report = {
        "queries": len(groups),
        "pairs": sum(len(g) for g in groups),
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 1),
        "final_loss": round(sum(tail) / len(tail), 4),
    }
    log.info("encoder fine-tuned", extra=report)
    return model, report


def graded_texts(labels: Sequence[Label], texts: Mapping[str, str]) -> list[GradedText]:
    """The labels as examples: each item's text (by item id) with its grade."""
    return [GradedText(label.query, texts[label.item_id], label.grade) for label in labels]


def train_and_save_encoder(
    base: str,
    examples: Sequence[GradedText],
    recipe: EncoderRecipe,
    seed: int,
    directory: str | os.PathLike[str],
    card: Mapping[str, Any],
    progress: bool = True,
) -> str:
    """Fine-tune `base` (a name or path the scorer resolves) and save it to `directory` with `card`, the base,
    the recipe and the run's report added; returns the fingerprint."""
    encoder, report = fine_tune_encoder(str(resolve_model_path(base)), examples, recipe, seed, progress)
    info = {
        **card,
        "base_model": base,
        "training_seconds": report["seconds"],
        "data": {**card.get("data", {}), **report},
        "stages": {"recipe": asdict(recipe)},
    }
    fingerprint = save_model(encoder, directory, info)
    log.info("encoder saved", extra={"model_dir": str(directory), "fingerprint": fingerprint})
    return fingerprint
