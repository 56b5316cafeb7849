"""Fine-tuning a cross-encoder through the soft-logic aggregate.

Every training case is an :class:`Example`: a query, the texts the model
scores against it, and a target. Without an aggregator it is a plain pair
(query-entity outcomes, or the query-item baseline); with an item's
entities and an :class:`entrel.logic.Aggregator` the loss is taken on the
aggregated item score (coverage and compatibility), so entity scores learn
from item labels or a teacher's item scores (EBRM).

Two losses:

* ``bce``: binary cross-entropy of the aggregated score against a soft
  target in [0, 1] (a graded label, or a teacher's score);
* ``margin_mse``: for two examples of the same query, the squared error
  between the student's score margin and the target margin (Walmart's
  distillation loss, arXiv 2505.07105).

Batches pack whole queries together; margins are only taken within a query.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from entrel.logic import NEUTRAL, Aggregator
from entrel.scoring import load_cross_encoder, pick_device

__all__ = ["Example", "FitReport", "fit", "trainable_cross_encoder"]

log = logging.getLogger(__name__)

_EPS = 1e-6
_HEAD_LR_FACTOR = 20


@dataclass(frozen=True)
class Example:
    query: str
    # Rendered entities of one item, or a single text.
    texts: tuple[str, ...]
    # Target of the (aggregated) score, in [0, 1].
    target: float
    # Examples of one group (one query) share batches: margins compare them.
    group: str
    # Entity type of each text, for the aggregator's type weights (empty: every text weighs 1).
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class FitReport:
    examples: int
    pairs_per_epoch: int
    epochs: int
    seconds: float
    final_loss: float


def trainable_cross_encoder(name_or_path: str, max_length: int, seed: int) -> Any:
    """A one-logit cross-encoder to train, starting from `name_or_path`.

    A backbone without that head gets a fresh one, drawn from torch's global
    generator: it is seeded here, or two runs on the same data train
    different models (seen on the demo: 0.95 vs 0.06 for one pair). It
    trains on the GPU when torch sees one (``CUDA_VISIBLE_DEVICES=`` keeps
    it on the CPU); the saved model's info says which (``trained_on``).
    """
    torch.manual_seed(seed)
    return load_cross_encoder(name_or_path, device=pick_device("auto"), num_labels=1, max_length=max_length)


def _batches(examples: Sequence[Example], batch_pairs: int, rng: random.Random) -> list[list[Example]]:
    """Shuffled batches of about `batch_pairs` distinct pairs, packing whole groups together.

    Examples of one group stay in one batch where they fit (margins compare
    them, and items of one query share entities, scored once per batch).
    """
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.group].append(example)
    order = list(groups.values())
    rng.shuffle(order)
    batches: list[list[Example]] = []
    current: list[Example] = []
    seen: set[tuple[str, str]] = set()
    for members in order:
        members = members[:]
        rng.shuffle(members)
        for example in members:
            new = {(example.query, t) for t in example.texts} - seen
            if current and len(seen) + len(new) > batch_pairs:
                batches.append(current)
                current, seen = [], set()
                new = {(example.query, t) for t in example.texts}
            current.append(example)
            seen |= new
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _aggregate(
    model: Any, tokenizer: Any, batch: Sequence[Example], aggregator: Aggregator | None, max_length: int
) -> torch.Tensor:
    """Each example's score, differentiable; each distinct pair is scored once.

    Without an aggregator an example is one (query, text) pair and its score
    is the pair's; with one, the item score of the example's entity scores.
    """
    index: dict[tuple[str, str], int] = {}
    slots = [[index.setdefault((ex.query, text), len(index)) for text in ex.texts] for ex in batch]
    pairs = list(index)
    features = tokenizer(
        [q for q, _ in pairs], [t for _, t in pairs], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    )
    device = next(model.parameters()).device
    probs = torch.sigmoid(model(**{k: v.to(device) for k, v in features.items()}).logits.view(-1).float())
    if aggregator is None:
        return probs[torch.tensor([s[0] for s in slots], device=device)]
    width = max(len(s) for s in slots)
    # Padding points at an extra slot holding the neutral score, which changes no item score.
    gather = torch.tensor([s + [len(pairs)] * (width - len(s)) for s in slots], device=device)
    padded = torch.cat([probs, torch.full((1,), NEUTRAL, device=device)])[gather]
    weights = [[aggregator.weights.of_type(t) for t in ex.types] if ex.types else [1.0] * len(ex.texts) for ex in batch]
    return aggregator.combine(padded, torch.tensor([w + [1.0] * (width - len(w)) for w in weights], device=device))


def _loss(scores: torch.Tensor, targets: torch.Tensor, groups: Sequence[str], kind: str) -> torch.Tensor:
    if kind == "bce":
        return torch.nn.functional.binary_cross_entropy(scores.clamp(_EPS, 1 - _EPS), targets)
    # margin_mse: every ordered pair of examples of the same group (query).
    ids = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    group = torch.tensor([ids[g] for g in groups], device=scores.device)
    same = (group[:, None] == group[None, :]) & ~torch.eye(len(groups), dtype=torch.bool, device=scores.device)
    if not same.any():
        return scores.sum() * 0.0
    error = (scores[:, None] - scores[None, :]) - (targets[:, None] - targets[None, :])
    return (error[same] ** 2).mean()


def fit(
    encoder: Any,
    examples: Sequence[Example],
    *,
    epochs: int,
    learning_rate: float,
    batch_pairs: int,
    aggregator: Aggregator | None = None,
    loss: str = "bce",
    max_length: int = 64,
    seed: int = 13,
    progress: bool = True,
    description: str = "train",
) -> FitReport:
    """Train `encoder` (a sentence-transformers CrossEncoder) in place.

    Without `aggregator` every example must be a single (query, text) pair.
    """
    if aggregator is None and any(len(ex.texts) > 1 for ex in examples):
        raise ValueError("examples with several texts need an aggregator")
    if loss not in ("bce", "margin_mse"):
        raise ValueError(f"unknown loss {loss!r}: bce or margin_mse")
    examples = [ex for ex in examples if ex.texts]
    if not examples or epochs <= 0:
        return FitReport(len(examples), 0, 0, 0.0, math.nan)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, tokenizer = encoder.model, encoder.processor
    steps_per_epoch = len(_batches(examples, batch_pairs, random.Random(0)))
    total_steps = steps_per_epoch * epochs
    # Word embeddings stay frozen: a dense gradient over the whole vocabulary
    # every step costs a third of CPU training time for no measured gain.
    model.get_input_embeddings().weight.requires_grad_(False)
    head = [p for n, p in model.named_parameters() if n.startswith("classifier") and p.requires_grad]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier") and p.requires_grad]
    # A fresh head needs a faster start than the pretrained body.
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": learning_rate}, {"params": head, "lr": learning_rate * _HEAD_LR_FACTOR}], weight_decay=0.01
    )
    warmup = max(1, total_steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup)))
    )
    model.train()
    started = time.perf_counter()
    recent: list[float] = []
    bar = tqdm(total=total_steps, desc=description, unit="batch", disable=not progress)
    for _ in range(epochs):
        for batch in _batches(examples, batch_pairs, rng):
            scores = _aggregate(model, tokenizer, batch, aggregator, max_length)
            targets = torch.tensor([ex.target for ex in batch], dtype=torch.float32, device=scores.device)
            value = _loss(scores, targets, [ex.group for ex in batch], loss)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            recent = (recent + [value.item()])[-50:]
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(recent):.4f}")
    bar.close()
    model.eval()
    seconds = time.perf_counter() - started
    pairs = sum(len(ex.texts) for ex in examples)
    log.info(
        "training done",
        extra={"stage": description, "examples": len(examples), "epochs": epochs, "seconds": round(seconds, 1)},
    )
    return FitReport(len(examples), pairs, epochs, seconds, float(np.mean(recent)) if recent else math.nan)
