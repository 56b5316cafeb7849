"""The ESCI (us) subset: real products and human judgments, and the query-level split.

Products become :class:`CatalogItem` (description = description + bullet
points, trimmed), judgments become :class:`Label` with grades
Exact 3, Substitute 2, Complement 1, Irrelevant 0.

The split is by query, never by pair, and deterministic: sort the distinct
query texts; the held-out test queries are every third one (sorted index
% 3 == 2: 50 of 150), the training queries the rest (100). Within the
training queries (in sorted order) every fifth (index % 5 == 4: 20) is the
validation subset, which training code may use for choices and early
stopping; the remaining 80 are the fit subset. No model, recipe or rule is
chosen on the test queries.

The data folder is read in place (it is shared, read-only reference data):
``$ENTREL_ESCI_DIR``, else ``../shared/data/esci-us`` beside the repository.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from entrel.catalog import CatalogItem
from entrel.errors import EntrelError
from entrel.offline.training.examples import Label

__all__ = [
    "EsciData",
    "Split",
    "SPLIT_RULE",
    "default_data_dir",
    "load",
    "read_labels",
    "read_products",
    "split_queries",
    "write_entrel_inputs",
]

log = logging.getLogger(__name__)

_PRODUCTS = "esci_us_ecommerce_shrunk.ndjson.zip"
_JUDGMENTS = "esci_us_judgments.json"
_GRADES = {"100.000": 3, "10.000": 2, "1.000": 1, "0.000": 0}
# Long descriptions add little a cross-encoder or an extractor can use.
_DESCRIPTION_CHARS = 1000
SPLIT_RULE = (
    "sorted distinct query texts; test: index % 3 == 2; train: the rest; "
    "validation: train (sorted) index % 5 == 4, a subset of train"
)


class EsciDataError(EntrelError, FileNotFoundError):
    """The ESCI folder or one of its files is missing or malformed."""


def default_data_dir() -> Path:
    """``$ENTREL_ESCI_DIR``, else ``../shared/data/esci-us``: the shared folder beside a checkout run from its root."""
    return Path(os.environ.get("ENTREL_ESCI_DIR", Path("..", "shared", "data", "esci-us")))


def _require(path: Path) -> Path:
    if not path.is_file():
        raise EsciDataError(
            f"ESCI file not found: {path}. Point --data (or $ENTREL_ESCI_DIR) at the esci-us folder "
            f"holding {_PRODUCTS} and {_JUDGMENTS}"
        )
    return path


def _item(doc: dict) -> CatalogItem:
    description = " ".join(
        part.strip() for part in (doc.get("description") or "", doc.get("bullet_points") or "") if part.strip()
    )
    return CatalogItem(
        item_id=doc["asin"],
        title=(doc.get("title") or "").strip(),
        description=" ".join(description.split())[:_DESCRIPTION_CHARS].strip(),
        brand=(doc.get("brand") or "").strip(),
        color=(doc.get("color") or "").strip(),
        category=tuple(c.strip() for c in doc.get("category") or () if c and c.strip()),
    )


def read_products(data_dir: str | os.PathLike[str]) -> list[CatalogItem]:
    """Every product of the bulk-index ndjson inside the zip (documents on even lines)."""
    path = _require(Path(data_dir) / _PRODUCTS)
    items = []
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".ndjson")]
        if len(names) != 1:
            raise EsciDataError(f"{path} should hold one .ndjson file, has {names}")
        with archive.open(names[0]) as lines:
            for number, line in enumerate(lines):
                if number % 2 == 1:  # odd lines (0-based even) are {"index": ...} headers
                    items.append(_item(json.loads(line)))
    log.info("ESCI products read", extra={"products": len(items)})
    return items


def read_labels(data_dir: str | os.PathLike[str]) -> list[Label]:
    """One graded label per judged (query, product), in file order."""
    path = _require(Path(data_dir) / _JUDGMENTS)
    try:
        judgments = json.loads(path.read_text(encoding="utf-8"))["judgmentRatings"]
        labels = [
            Label(entry["query"], rating["docId"], _GRADES[rating["rating"]])
            for entry in judgments
            for rating in entry["ratings"]
        ]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise EsciDataError(f"{path} is not an ESCI judgments file ({type(exc).__name__}: {exc})") from None
    return labels


@dataclass(frozen=True)
class Split:
    """Query texts per side; `validation` is a subset of `train`, `test` is disjoint from both."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    # How the queries were assigned, for reports.
    rule: str = SPLIT_RULE

    @property
    def fit(self) -> tuple[str, ...]:
        """Training queries outside the validation subset: what recipe candidates train on."""
        chosen = set(self.validation)
        return tuple(q for q in self.train if q not in chosen)

    def thinned(self, fit_every: int, validation_every: int, test_every: int) -> Split:
        """A smaller split for quick runs: every n-th query of each part, still disjoint."""
        validation = self.validation[::validation_every]
        return Split(tuple(sorted(self.fit[::fit_every] + validation)), validation, self.test[::test_every], self.rule)

    def describe(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "queries": {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)},
            "test_queries": list(self.test),
        }


def split_queries(queries: Iterable[str]) -> Split:
    """The deterministic query-level split of the module docstring."""
    ordered = sorted(set(queries))
    train = tuple(q for i, q in enumerate(ordered) if i % 3 != 2)
    test = tuple(q for i, q in enumerate(ordered) if i % 3 == 2)
    validation = tuple(q for i, q in enumerate(train) if i % 5 == 4)
    return Split(train, validation, test)


@dataclass(frozen=True)
class EsciData:
    # Every product of the file, by id (judged or not).
    items: dict[str, CatalogItem]
    labels: tuple[Label, ...]
    split: Split

    def labels_of(self, queries: Sequence[str]) -> list[Label]:
        """Labels of these queries, grouped by query in the given order, items sorted by id.

        Sorted ids make ties neutral: the judgments file lists a query's
        products by rating, so file order would reward constant scores.
        """
        by_query: dict[str, list[Label]] = {q: [] for q in queries}
        for label in self.labels:
            if label.query in by_query:
                by_query[label.query].append(label)
        return [label for q in queries for label in sorted(by_query[q], key=lambda lab: lab.item_id)]


def _check(split: Split, labels: Sequence[Label], items: dict[str, CatalogItem]) -> None:
    """No query on two sides, validation inside train, every judged product known."""
    train, validation, test = set(split.train), set(split.validation), set(split.test)
    assert not train & test, f"queries on both sides: {sorted(train & test)[:3]}"
    assert validation <= train, "validation queries must be training queries"
    assert {lab.query for lab in labels} <= train | test, "a labelled query is on no side"
    unknown = {lab.item_id for lab in labels} - items.keys()
    if unknown:
        raise EsciDataError(f"{len(unknown)} judged products are not in the product file, e.g. {sorted(unknown)[:3]}")


def load(data_dir: str | os.PathLike[str] | None = None) -> EsciData:
    """Products, labels and the split, checked."""
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    if not directory.is_dir():
        raise EsciDataError(
            f"ESCI data folder not found: {directory}. Pass --data DIR or set $ENTREL_ESCI_DIR "
            f"(the shared copy lives at ../shared/data/esci-us from the repository root)"
        )
    items = {item.item_id: item for item in read_products(directory)}
    labels = tuple(read_labels(directory))
    split = split_queries(lab.query for lab in labels)
    _check(split, labels, items)
    log.info(
        "ESCI loaded",
        extra={"products": len(items), "labels": len(labels), "train": len(split.train), "test": len(split.test)},
    )
    return EsciData(items, labels, split)


def write_entrel_inputs(items: Iterable[CatalogItem], queries: Iterable[str], directory: Path) -> dict[str, str]:
    """Products as an entrel JSONL catalog and `queries` as a query log (one search each) under `directory`.

    Returns the setting overrides that point entrel at them, so the nightly
    job and the server read ESCI through the ordinary catalog path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    catalog = directory / "catalog.jsonl"
    with open(catalog, "w", encoding="utf-8") as f:
        for item in items:
            # Attributes as a JSON string: an empty object is not a valid polars struct.
            row = {**asdict(item), "category": list(item.category), "attributes": json.dumps(dict(item.attributes))}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    # ESCI has no traffic counts.
    query_log = directory / "query_log.jsonl"
    with open(query_log, "w", encoding="utf-8") as f:
        for query in sorted(set(queries)):
            f.write(json.dumps({"query": query, "count": 1}, ensure_ascii=False) + "\n")
    return {"catalog.path": str(catalog), "catalog.format": "jsonl", "nightly.query_log": str(query_log)}
