"""Evaluation on real data (ESCI): every registered method reranks each held-out query's judged products.

A method is one function ``(EvalContext) -> MethodResult`` registered with
:func:`method` in any module of the :mod:`offline.methods` package (all of
them are imported when the evaluation runs), so adding a method is adding
one function, in one's own module. The context carries the split, the
products, the labels, the settings and the quick flag, and computes heavy
shared artefacts once per run (sentence embeddings, extracted entities).

Metrics over the held-out queries (see :mod:`offline.esci` for the split):
nDCG@10 with gains 3/2/1/0, nDCG@10 with the ESCI paper's gains
1/0.1/0.01/0, and the AUC of exact vs irrelevant items within a query.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import os
import pkgutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from entrel.catalog import CatalogItem, Entity
from entrel.config import Settings
from entrel.errors import EntrelError
from offline import esci
from offline.metrics import ESCI_GAINS, GRADED_GAINS, auc, mean_ndcg
from offline.training.examples import Label

__all__ = [
    "EvalContext",
    "Method",
    "MethodResult",
    "Scores",
    "choose_on_validation",
    "context",
    "method",
    "methods",
    "quality",
    "run",
    "validation_ndcg",
]

log = logging.getLogger(__name__)

# A score per (query, item_id); higher ranks first.
Scores = Mapping[tuple[str, str], float]
T = TypeVar("T")
_METRICS = ("ndcg@10", "ndcg@10_esci", "auc_e_vs_i")
# Quick runs (CI): every n-th query of fit, validation and test.
_QUICK_EVERY = {"fit_every": 4, "validation_every": 4, "test_every": 3}
_ENCODE_BATCH = 64


@dataclass(frozen=True)
class MethodResult:
    """Scores of every held-out pair; several runs (seeds) are averaged metric by metric.

    `extra` goes into the method's JSON entry as is (e.g. train_seconds, choices made).
    """

    runs: tuple[Scores, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Ablations and other variants of the method: each becomes a row "NAME/VARIANT".
    variants: Mapping[str, Scores] = field(default_factory=dict)

    @classmethod
    def of(cls, scores: Scores, **extra: Any) -> MethodResult:
        return cls((scores,), extra)


@dataclass
class EvalContext:
    """What every method sees; shared artefacts are built on first use and kept for the run."""

    settings: Settings
    data: esci.EsciData
    split: esci.Split
    quick: bool
    # Retrain models that a method would otherwise reuse from disk.
    retrain: bool = False
    progress: bool = True
    # The command line's --config/--set flags, for an `entrel serve` subprocess a method starts.
    config_args: tuple[str, ...] = ()
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def items(self) -> Mapping[str, CatalogItem]:
        return self.data.items

    @property
    def models_dir(self) -> Path:
        return Path(self.settings.data_dir) / "models"

    def labels_of(self, queries: Sequence[str]) -> list[Label]:
        return self.data.labels_of(queries)

    @functools.cached_property
    def test_labels(self) -> list[Label]:
        """The held-out pairs every method must score."""
        return self.labels_of(self.split.test)

    def shared(self, key: str, build: Callable[[], T]) -> T:
        """`build()` once per run under `key` (models, encodings, indexes)."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]

    def sentence_encoder(self, path: str | os.PathLike[str]) -> Any:
        """A sentence-transformers bi-encoder from a local directory, loaded once."""

        def load() -> Any:
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(str(path), device="cpu", local_files_only=True)

        return self.shared(f"sentence-encoder:{path}", load)

    def embed(self, path: str | os.PathLike[str], texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of `texts` by the model at `path`.

        Each distinct text is encoded once: vectors are kept on disk under
        data_dir/eval/embeddings (one file per model), so a second run of the
        evaluation does not encode again (all-mpnet-base-v2 takes minutes on CPU).
        """
        store = Path(self.settings.data_dir) / "eval" / "embeddings" / f"{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.npz"
        cache: dict[str, np.ndarray] = self.shared(f"embeddings:{path}", lambda: _load_vectors(store))
        missing = sorted(set(texts) - cache.keys())
        if missing:
            encoder = self.sentence_encoder(path)
            started = time.perf_counter()
            vectors = encoder.encode(
                missing, batch_size=_ENCODE_BATCH, normalize_embeddings=True, show_progress_bar=self.progress
            )
            cache.update(zip(missing, vectors, strict=True))
            timing = self.encode_timing(path)
            timing["texts"] += len(missing)
            timing["seconds"] += time.perf_counter() - started
            log.info("encoded", extra={"model": str(path), "texts": len(missing), "seconds": round(timing["seconds"], 1)})
            _save_vectors(store, cache)
        return np.stack([cache[t] for t in texts])

    def encode_timing(self, path: str | os.PathLike[str]) -> dict[str, float]:
        """Texts :meth:`embed` encoded with the model at `path` so far this run, and the seconds it took."""
        return self.shared(f"encode-timing:{path}", lambda: {"texts": 0, "seconds": 0.0})

    @functools.cached_property
    def entities(self) -> dict[str, list[Entity]]:
        """Entities of every judged product, with a vocabulary learned from all products."""
        from entrel.catalog import EntityExtractor, Vocabulary

        judged = sorted({label.item_id for label in self.data.labels})
        items = [self.items[i] for i in judged]
        extractor = EntityExtractor(self.settings.extraction, Vocabulary.learn(self.items.values()))
        return dict(zip(judged, extractor.extract_many(items, progress=self.progress), strict=True))


def _load_vectors(store: Path) -> dict[str, np.ndarray]:
    if not store.is_file():
        return {}
    with np.load(store) as saved:
        return dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))


def _save_vectors(store: Path, cache: Mapping[str, np.ndarray]) -> None:
    """Write to a temporary file and rename: an interrupted run never leaves a truncated cache."""
    store.parent.mkdir(parents=True, exist_ok=True)
    partial = store.with_suffix(".partial.npz")
    np.savez(partial, texts=np.array(list(cache), dtype=str), vectors=np.stack(list(cache.values())))
    os.replace(partial, store)


MethodFn = Callable[[EvalContext], MethodResult]


@dataclass(frozen=True)
class Method:
    name: str
    run: MethodFn
    # Whether a quick run (CI) includes it by default.
    quick: bool


_REGISTRY: dict[str, Method] = {}


def method(name: str, *, quick: bool = True) -> Callable[[MethodFn], MethodFn]:
    """Register an evaluation method under `name` (its JSON key and table row)."""

    def register(fn: MethodFn) -> MethodFn:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"evaluation method {name!r} registered twice")
        _REGISTRY[name] = Method(name, fn, quick)
        return fn

    return register


def methods() -> dict[str, Method]:
    """Every registered method, after importing all modules of offline.methods."""
    import offline.methods as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(_REGISTRY)


def quality(labels: Sequence[Label], scores: Scores) -> dict[str, float]:
    """The three metrics of `scores` on `labels` (any queries: test, or validation for choices)."""
    per_query: dict[str, tuple[list[float], list[int]]] = {}
    for label in labels:
        try:
            score = float(scores[(label.query, label.item_id)])
        except KeyError:
            raise ValueError(f"no score for ({label.query!r}, {label.item_id})") from None
        entry = per_query.setdefault(label.query, ([], []))
        entry[0].append(score)
        entry[1].append(label.grade)
    return {
        "ndcg@10": mean_ndcg(per_query, 10, GRADED_GAINS),
        "ndcg@10_esci": mean_ndcg(per_query, 10, ESCI_GAINS),
        "auc_e_vs_i": auc(per_query),
    }


def validation_ndcg(ctx: EvalContext, score: Callable[[list[Label]], Scores]) -> float:
    """nDCG@10 on the validation queries of a scorer given their labelled pairs: the basis of every choice."""
    labels = ctx.labels_of(ctx.split.validation)
    return round(quality(labels, score(labels))["ndcg@10"], 4)


def choose_on_validation(
    ctx: EvalContext, candidates: Mapping[str, Callable[[list[Label]], Scores]]
) -> tuple[str, dict[str, float]]:
    """The candidate with the best validation nDCG@10 (the first on ties), and every candidate's value.

    The test queries are never shown to a candidate here.
    """
    values = {name: validation_ndcg(ctx, score) for name, score in candidates.items()}
    best = max(values, key=lambda name: values[name])
    log.info("chosen on validation", extra={"chosen": best, "validation_ndcg@10": values})
    return best, values


def _metrics(ctx: EvalContext, runs: Sequence[Scores]) -> dict[str, float]:
    per_run = [quality(ctx.test_labels, scores) for scores in runs]
    return {name: round(float(np.mean([m[name] for m in per_run])), 4) for name in _METRICS}


def _evaluate(ctx: EvalContext, chosen: Method) -> dict[str, dict[str, Any]]:
    """The method's row, then one row per variant."""
    started = time.perf_counter()
    result = chosen.run(ctx)
    seconds = time.perf_counter() - started
    metrics = _metrics(ctx, result.runs)
    log.info("method evaluated", extra={"method": chosen.name, **metrics, "seconds": round(seconds, 1)})
    rows = {chosen.name: {**metrics, **result.extra, "seconds": round(seconds, 1)}}
    for variant, scores in result.variants.items():
        rows[f"{chosen.name}/{variant}"] = {**_metrics(ctx, (scores,)), "seconds": 0.0}
    return rows


def _table(results: Mapping[str, Mapping[str, Any]]) -> str:
    width = max(24, *(len(name) for name in results))
    header = f"{'method':<{width}} {'ndcg@10':>8} {'ndcg@10_esci':>13} {'auc_e_vs_i':>11} {'train_s':>8} {'seconds':>8}"
    rows = [header, "-" * len(header)]
    for name, r in results.items():
        train = f"{r['train_seconds']:.0f}" if "train_seconds" in r else "-"
        rows.append(
            f"{name:<{width}} {r['ndcg@10']:>8.4f} {r['ndcg@10_esci']:>13.4f} {r['auc_e_vs_i']:>11.4f} {train:>8} {r['seconds']:>8.0f}"
        )
    return "\n".join(rows)


def _select(names: Sequence[str] | None, quick: bool) -> list[Method]:
    registry = methods()
    if not names:
        return [m for m in registry.values() if m.quick or not quick]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise EntrelError(f"unknown evaluation method(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    return [registry[n] for n in names]


def context(
    settings: Settings,
    data_dir: str | os.PathLike[str] | None,
    quick: bool,
    *,
    retrain: bool = False,
    progress: bool = True,
    config_args: Sequence[str] = (),
) -> EvalContext:
    """ESCI loaded and split (thinned when quick), ready for methods and for training on it."""
    data = esci.load(data_dir)
    split = data.split.thinned(**_QUICK_EVERY) if quick else data.split
    return EvalContext(settings, data, split, quick, retrain=retrain, progress=progress, config_args=tuple(config_args))


def run(
    settings: Settings,
    data_dir: str | os.PathLike[str] | None,
    out_path: str | os.PathLike[str],
    quick: bool,
    *,
    method_names: Sequence[str] | None = None,
    retrain: bool = False,
    progress: bool = True,
    config_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate the chosen methods (default: all; quick: those fit for CI), print a table, write JSON."""
    chosen = _select(method_names, quick)
    ctx = context(settings, data_dir, quick, retrain=retrain, progress=progress, config_args=config_args)
    split = ctx.split
    results = {name: row for m in chosen for name, row in _evaluate(ctx, m).items()}
    report = {"methods": results, "split": {**split.describe(), "quick": quick}}
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(_table(results))
    print(f"{len(split.test)} held-out queries{' (quick run)' if quick else ''}; written to {out}")
    return report
