"""Evaluation on real data (ESCI): every registered method reranks each held-out query's judged products.

A method is one function ``(EvalContext) -> MethodResult`` registered with
:func:`method` in any module of the :mod:`entrel.offline.methods` package (all of
them are imported when the evaluation runs), so adding a method is adding
one function, in one's own module. The context carries the split, the
products, the labels, the settings and the quick flag, and computes heavy
shared artefacts once per run (sentence embeddings, extracted entities).

Metrics over the held-out queries (see :mod:`entrel.offline.esci` for the split):
nDCG@10 with gains 3/2/1/0, nDCG@10 with the ESCI paper's gains
1/0.1/0.01/0, and the AUC of exact vs irrelevant, vs complement and vs
substitute items within a query. Each row keeps its per-query nDCG@10, so
that rows can be compared by a paired bootstrap over queries
(:func:`entrel.offline.metrics.paired_bootstrap`); a method with several runs
(seeds) reports the mean and the standard deviation over runs.

The dataset is ESCI by default, or another judged catalog described by a
TOML file (:mod:`entrel.offline.datasets`). On a cross-domain dataset (no
training queries) only methods registered for it run: those that need no
training (``cross_domain=True``) and :func:`cross_domain_method` ones,
which use models trained on ESCI.
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
from entrel.offline import datasets, esci
from entrel.offline.metrics import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    ESCI_GAINS,
    GRADED_GAINS,
    Interval,
    auc,
    mean_ndcg,
    ndcg_per_query,
    paired_bootstrap,
)
from entrel.offline.training.examples import Label

__all__ = [
    "EvalContext",
    "Method",
    "MethodResult",
    "Scores",
    "choose_on_validation",
    "PER_QUERY",
    "comparisons",
    "context",
    "cross_domain_method",
    "default_comparisons",
    "method",
    "methods",
    "parse_compare",
    "quality",
    "query_ndcg",
    "run",
    "validation_ndcg",
]

log = logging.getLogger(__name__)

# A score per (query, item_id); higher ranks first.
Scores = Mapping[tuple[str, str], float]
T = TypeVar("T")
_METRICS = ("ndcg@10", "ndcg@10_esci", "auc_e_vs_i", "auc_e_vs_c", "auc_e_vs_s")
# Each row's per-query nDCG@10 (mean over runs), the input of paired comparisons.
PER_QUERY = "per_query_ndcg@10"
# Rows every other method row is compared with by default, when present.
DEFAULT_REFERENCES = ("bm25", "biencoder_minilm", "distillation")
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
    # Which judged dataset `data` is (entrel.offline.datasets).
    dataset: str = datasets.ESCI
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
        store = (
            Path(self.settings.data_dir) / "eval" / "embeddings" / f"{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.npz"
        )
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


# Methods for datasets with training queries (ESCI), and for cross-domain datasets.
_REGISTRY: dict[str, Method] = {}
_CROSS_DOMAIN_REGISTRY: dict[str, Method] = {}


def _register(registry: dict[str, Method], entry: Method) -> None:
    if entry.name in registry and registry[entry.name].run is not entry.run:
        raise ValueError(f"evaluation method {entry.name!r} registered twice")
    registry[entry.name] = entry


def method(name: str, *, quick: bool = True, cross_domain: bool = False) -> Callable[[MethodFn], MethodFn]:
    """Register an evaluation method under `name` (its JSON key and table row).

    `cross_domain`: it trains nothing on the dataset, so it also runs as is
    on a dataset without training queries.
    """

    def register(fn: MethodFn) -> MethodFn:
        _register(_REGISTRY, Method(name, fn, quick))
        if cross_domain:
            _register(_CROSS_DOMAIN_REGISTRY, Method(name, fn, quick))
        return fn

    return register


def cross_domain_method(name: str, *, quick: bool = True) -> Callable[[MethodFn], MethodFn]:
    """Register what method `name` does on a dataset without training queries (e.g. score with the ESCI model)."""

    def register(fn: MethodFn) -> MethodFn:
        _register(_CROSS_DOMAIN_REGISTRY, Method(name, fn, quick))
        return fn

    return register


def methods(cross_domain: bool = False) -> dict[str, Method]:
    """Every registered method (for a cross-domain dataset, or not), after importing all modules of entrel.offline.methods."""
    import entrel.offline.methods as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(_CROSS_DOMAIN_REGISTRY if cross_domain else _REGISTRY)


def _per_query(labels: Sequence[Label], scores: Scores) -> dict[str, tuple[list[float], list[int]]]:
    """(scores, grades) of each query's labelled items."""
    per_query: dict[str, tuple[list[float], list[int]]] = {}
    for label in labels:
        try:
            score = float(scores[(label.query, label.item_id)])
        except KeyError:
            raise ValueError(f"no score for ({label.query!r}, {label.item_id})") from None
        entry = per_query.setdefault(label.query, ([], []))
        entry[0].append(score)
        entry[1].append(label.grade)
    return per_query


def quality(labels: Sequence[Label], scores: Scores) -> dict[str, float]:
    """The metrics of `scores` on `labels` (any queries: test, or held-out ones for choices).

    An AUC is nan when no query has items of both grades.
    """
    per_query = _per_query(labels, scores)
    return {
        "ndcg@10": mean_ndcg(per_query, 10, GRADED_GAINS),
        "ndcg@10_esci": mean_ndcg(per_query, 10, ESCI_GAINS),
        "auc_e_vs_i": auc(per_query, 3, 0),
        "auc_e_vs_c": auc(per_query, 3, 1),
        "auc_e_vs_s": auc(per_query, 3, 2),
    }


def query_ndcg(labels: Sequence[Label], scores: Scores) -> dict[str, float]:
    """nDCG@10 (gains 3/2/1/0) of each query of `labels`."""
    return ndcg_per_query(_per_query(labels, scores), 10, GRADED_GAINS)


def validation_ndcg(ctx: EvalContext, score: Callable[[list[Label]], Scores]) -> float:
    """nDCG@10 on the validation queries of a scorer given their labelled pairs: the basis of every choice."""
    labels = ctx.labels_of(ctx.split.validation)
    return round(quality(labels, score(labels))["ndcg@10"], 4)


def choose_on_validation(
    ctx: EvalContext, candidates: Mapping[str, Callable[[list[Label]], Scores]], default: str | None = None
) -> tuple[str, dict[str, float]]:
    """The candidate with the best validation nDCG@10 (the first on ties), and every candidate's value.

    The test queries are never shown to a candidate here. A dataset without
    validation queries (cross-domain) gets the fixed `default` and no values.
    """
    if not ctx.split.validation:
        if default is None or default not in candidates:
            raise EntrelError(f"{ctx.dataset} has no validation queries to choose on, and no default among {list(candidates)}")
        return default, {}
    values = {name: validation_ndcg(ctx, score) for name, score in candidates.items()}
    best = max(values, key=lambda name: values[name])
    log.info("chosen on validation", extra={"chosen": best, "validation_ndcg@10": values})
    return best, values


def _rounded(value: float) -> float | None:
    """JSON has no nan: a metric that cannot be computed (e.g. no complements judged) is null."""
    return None if np.isnan(value) else round(float(value), 4)


def _metrics(ctx: EvalContext, runs: Sequence[Scores]) -> dict[str, Any]:
    """Each metric's mean over runs (and `NAME_sd`, the sd over runs, when there are several); per-query nDCG@10."""
    per_run = [quality(ctx.test_labels, scores) for scores in runs]
    out: dict[str, Any] = {}
    for name in _METRICS:
        values = np.array([m[name] for m in per_run], dtype=np.float64)
        out[name] = _rounded(values.mean())
        if len(runs) > 1:
            out[f"{name}_sd"] = _rounded(values.std(ddof=1))
    if len(runs) > 1:
        out["runs"] = len(runs)
    per_query = [query_ndcg(ctx.test_labels, scores) for scores in runs]
    out[PER_QUERY] = {q: round(float(np.mean([p[q] for p in per_query])), 6) for q in per_query[0]}
    return out


def _evaluate(ctx: EvalContext, chosen: Method) -> dict[str, dict[str, Any]]:
    """The method's row, then one row per variant."""
    started = time.perf_counter()
    result = chosen.run(ctx)
    seconds = time.perf_counter() - started
    metrics = _metrics(ctx, result.runs)
    log.info(
        "method evaluated",
        extra={"method": chosen.name, **{k: metrics[k] for k in _METRICS}, "seconds": round(seconds, 1)},
    )
    rows = {chosen.name: {**metrics, **result.extra, "seconds": round(seconds, 1)}}
    for variant, scores in result.variants.items():
        rows[f"{chosen.name}/{variant}"] = {**_metrics(ctx, (scores,)), "seconds": 0.0}
    return rows


def default_comparisons(rows: Sequence[str], references: Sequence[str] = DEFAULT_REFERENCES) -> list[tuple[str, str]]:
    """Every row against each reference row that is present (not against itself, nor B vs A after A vs B)."""
    pairs: list[tuple[str, str]] = []
    for b in (r for r in references if r in rows):
        pairs += [(a, b) for a in rows if a != b and (b, a) not in pairs]
    return pairs


def comparisons(results: Mapping[str, Mapping[str, Any]], pairs: Sequence[tuple[str, str]]) -> dict[str, Interval]:
    """ "A vs B": mean per-query nDCG@10 difference A - B and its paired bootstrap 95% interval."""
    unknown = sorted({name for pair in pairs for name in pair} - results.keys())
    if unknown:
        raise EntrelError(f"cannot compare {', '.join(unknown)}: no such row in this run ({', '.join(results)})")
    return {f"{a} vs {b}": paired_bootstrap(results[a][PER_QUERY], results[b][PER_QUERY]) for a, b in pairs}


def parse_compare(spec: str) -> list[tuple[str, str]]:
    """``"A:B,C:D"`` -> [(A, B), (C, D)]."""
    pairs = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        a, sep, b = part.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise EntrelError(f"--compare expects A:B[,C:D...]; got {part!r}")
        pairs.append((a.strip(), b.strip()))
    return pairs


def _check_compare(pairs: Sequence[tuple[str, str]], chosen: Sequence[Method]) -> None:
    """Fail before hours of evaluation, not after: each compared row is a chosen method or one of its variants."""
    names = {m.name for m in chosen}
    unknown = sorted({n for pair in pairs for n in pair if n.split("/")[0] not in names})
    if unknown:
        raise EntrelError(f"--compare names rows this run does not make: {', '.join(unknown)} (methods: {', '.join(names)})")


def _cell(row: Mapping[str, Any], name: str) -> str:
    """ "0.8120", or "0.812 ± 0.006" for several runs; "-" when it cannot be computed."""
    value = row[name]
    if value is None:
        return "-"
    sd = row.get(f"{name}_sd")
    return f"{value:.3f} ± {sd:.3f}" if sd is not None else f"{value:.4f}"


def _table(results: Mapping[str, Mapping[str, Any]]) -> str:
    width = max(24, *(len(name) for name in results))
    header = f"{'method':<{width}} " + " ".join(f"{m:>15}" for m in _METRICS) + f" {'train_s':>8} {'seconds':>8}"
    rows = [header, "-" * len(header)]
    for name, r in results.items():
        train = f"{r['train_seconds']:.0f}" if "train_seconds" in r else "-"
        cells = " ".join(f"{_cell(r, m):>15}" for m in _METRICS)
        rows.append(f"{name:<{width}} {cells} {train:>8} {r['seconds']:>8.0f}")
    return "\n".join(rows)


def _select(names: Sequence[str] | None, quick: bool, cross_domain: bool) -> list[Method]:
    registry = methods(cross_domain)
    if not names:
        return [m for m in registry.values() if m.quick or not quick]
    unknown = [n for n in names if n not in registry]
    if unknown:
        where = "a cross-domain dataset" if cross_domain else "this dataset"
        raise EntrelError(f"unknown evaluation method(s) for {where}: {', '.join(unknown)}; known: {', '.join(registry)}")
    return [registry[n] for n in names]


def context(
    settings: Settings,
    data_dir: str | os.PathLike[str] | None,
    quick: bool,
    *,
    retrain: bool = False,
    progress: bool = True,
    config_args: Sequence[str] = (),
    dataset: str = datasets.ESCI,
    data_spec: str | os.PathLike[str] | None = None,
) -> EvalContext:
    """The dataset (ESCI unless `dataset` or a `data_spec` file says otherwise) loaded and split (thinned when quick)."""
    name, data = datasets.load_named(dataset, data_dir, data_spec)
    split = data.split.thinned(**_QUICK_EVERY) if quick else data.split
    return EvalContext(
        settings, data, split, quick, retrain=retrain, progress=progress, config_args=tuple(config_args), dataset=name
    )


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
    dataset: str = datasets.ESCI,
    data_spec: str | os.PathLike[str] | None = None,
    compare: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Evaluate the chosen methods (default: all; quick: those fit for CI), print a table and the
    paired comparisons (default: :func:`default_comparisons`), write JSON."""
    chosen = _select(method_names, quick, datasets.is_cross_domain(dataset, data_spec))
    if compare:
        _check_compare(compare, chosen)
    ctx = context(
        settings,
        data_dir,
        quick,
        retrain=retrain,
        progress=progress,
        config_args=config_args,
        dataset=dataset,
        data_spec=data_spec,
    )
    split = ctx.split
    results = {name: row for m in chosen for name, row in _evaluate(ctx, m).items()}
    pairs = list(compare) if compare else default_comparisons([m.name for m in chosen])
    intervals = comparisons(results, pairs)
    report = {
        "dataset": ctx.dataset,
        "methods": results,
        "comparisons": {
            "metric": "ndcg@10",
            "method": f"paired bootstrap over queries, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}, "
            "95% percentile interval",
            "pairs": {
                pair: {"mean": round(i.mean, 4), "low": round(i.low, 4), "high": round(i.high, 4)}
                for pair, i in intervals.items()
            },
        },
        "split": {**split.describe(), "quick": quick},
    }
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(_table(results))
    for pair, interval in intervals.items():
        print(f"{pair}: {interval}")
    print(f"{ctx.dataset}: {len(split.test)} held-out queries{' (quick run)' if quick else ''}; written to {out}")
    return report
