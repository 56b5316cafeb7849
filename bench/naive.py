"""The naive way, as a load target: the cross-encoder on every (query, item text) pair of a request.

Plain ``sentence_transformers.CrossEncoder.predict`` on the same model,
in the benchmark's own process (no gRPC: that only flatters the naive side).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from entrel.bench.stats import Reply
from entrel.bench.workload import BenchRequest
from entrel.catalog import CatalogItem

__all__ = ["NaiveTarget", "item_text"]


def item_text(item: CatalogItem) -> str:
    """What the naive way shows the model for an item: its title, plus brand and color when known."""
    extra = [f"{name}: {value}" for name, value in (("brand", item.brand), ("color", item.color)) if value]
    return ". ".join([item.title, *extra])


class NaiveTarget:
    """Scores request ``i % len(requests)`` with ``CrossEncoder.predict``."""

    def __init__(self, model: Any, texts: Mapping[str, str], requests: Sequence[BenchRequest], batch_size: int = 32) -> None:
        self._model = model
        self._batch_size = batch_size
        self._pairs = [[(r.query, texts[i]) for i in r.item_ids] for r in requests]

    def call(self, index: int) -> Reply:
        self._model.predict(self._pairs[index % len(self._pairs)], batch_size=self._batch_size, show_progress_bar=False)
        return Reply("OK")
