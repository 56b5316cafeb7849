"""Offline precompute throughput: entrel's scorer vs plain ``CrossEncoder.predict`` on the same pairs.

The pairs are the nightly's own candidates, read back from the snapshot's
rows (query, rendered entity). Every row also reports how far its scores
are from plain predict's on CPU, so a fast row that scores differently
shows. GPU rows are added when CUDA is available.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from entrel.cache import SnapshotReader
from entrel.config import ModelSettings
from entrel.scoring import CrossEncoderScorer, cpu_has_fast_bfloat16, load_cross_encoder

__all__ = ["candidate_pairs", "run"]

log = logging.getLogger(__name__)

Pair = tuple[str, str]
ScoreFn = Callable[[Sequence[Pair]], Any]
_WARMUP_PAIRS = 64
_PREDICT_BATCH = 32
# entrel's token budget on a GPU (padded tokens per batch).
_GPU_TOKEN_BUDGET = 65536


def candidate_pairs(snap: SnapshotReader, n: int, seed: int = 0) -> list[Pair]:
    """`n` (query, rendered entity) pairs (fewer if the snapshot holds fewer): rows of random cached queries."""
    queries = snap.queries()
    np.random.default_rng(seed).shuffle(queries)
    rendered = [e.render() for e in snap.entities]
    pairs: list[Pair] = []
    for query in queries:
        row = snap.row(query)
        assert row is not None, "every query of a snapshot has a row"
        pairs.extend((query, rendered[i]) for i in row[0].tolist())
        if len(pairs) >= n:
            break
    return pairs[:n]


def _predict(settings: ModelSettings, device: str) -> ScoreFn:
    model = load_cross_encoder(settings.name_or_path, device=device, max_length=settings.max_length)
    return lambda pairs: model.predict(pairs, batch_size=_PREDICT_BATCH, show_progress_bar=False)


def _scorer(settings: ModelSettings, **changes: Any) -> ScoreFn:
    return CrossEncoderScorer(dataclasses.replace(settings, **changes)).score


def _variants(s: ModelSettings) -> list[tuple[str, str, str, Callable[[], ScoreFn]]]:
    """(method, device, precision, how to load it) of every row this machine can run; plain predict first."""
    rows: list[tuple[str, str, str, Callable[[], ScoreFn]]] = [
        (f"CrossEncoder.predict(batch_size={_PREDICT_BATCH})", "cpu", "fp32", lambda: _predict(s, "cpu")),
        (
            f"CrossEncoderScorer.score(token_budget={s.token_budget})",
            "cpu",
            "fp32",
            lambda: _scorer(s, device="cpu", dtype="float32", quantize="none"),
        ),
        (
            f"CrossEncoderScorer.score(token_budget={s.token_budget})",
            "cpu",
            "int8",
            lambda: _scorer(s, device="cpu", dtype="float32", quantize="int8"),
        ),
    ]
    if cpu_has_fast_bfloat16():
        rows.append(
            (
                f"CrossEncoderScorer.score(token_budget={s.token_budget})",
                "cpu",
                "bf16",
                lambda: _scorer(s, device="cpu", dtype="bfloat16", quantize="none"),
            )
        )
    if torch.cuda.is_available():
        rows += [
            (f"CrossEncoder.predict(batch_size={_PREDICT_BATCH})", "cuda", "fp32", lambda: _predict(s, "cuda")),
            (
                f"CrossEncoderScorer.score(token_budget={_GPU_TOKEN_BUDGET})",
                "cuda",
                "fp16",
                lambda: _scorer(s, device="cuda", dtype="float16", quantize="none", token_budget=_GPU_TOKEN_BUDGET),
            ),
        ]
    return rows


def run(settings: ModelSettings, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
    """One row per variant: pairs/s, speed-up over plain predict on the same device, score drift."""
    rows: list[dict[str, Any]] = []
    reference: np.ndarray | None = None
    predict_rate: dict[str, float] = {}
    for method, device, precision, load in _variants(settings):
        row: dict[str, Any] = {"method": method, "device": device, "precision": precision, "pairs": len(pairs)}
        try:
            score = load()
            score(pairs[:_WARMUP_PAIRS])
            started = time.perf_counter()
            scores = np.asarray(score(pairs), dtype=np.float32)
            seconds = time.perf_counter() - started
        except Exception as exc:  # an optional variant (int8, GPU) failing is a result, not a crash
            log.warning("precompute variant failed", extra={"method": method, "precision": precision, "error": str(exc)})
            rows.append({**row, "error": f"{type(exc).__name__}: {exc}"})
            continue
        rate = len(pairs) / seconds
        reference = scores if reference is None else reference
        predict_rate.setdefault(device, rate)
        rows.append(
            {
                **row,
                "seconds": round(seconds, 3),
                "pairs_per_s": round(rate, 1),
                "speedup_vs_predict": round(rate / predict_rate[device], 2),
                "max_abs_diff_vs_predict": round(float(np.abs(scores - reference).max()), 6) if len(pairs) else 0.0,
                "mean_abs_diff_vs_predict": round(float(np.abs(scores - reference).mean()), 6) if len(pairs) else 0.0,
            }
        )
    return rows
