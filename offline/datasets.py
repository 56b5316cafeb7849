"""Judged datasets described by a TOML file: products and graded labels in the shape of :class:`esci.EsciData`.

A dataset description (shipped ones live in ``offline/dataset_specs/``)
names the folder, the product files, which columns are the id, title,
brand, colour and description, which columns become entity attributes
(``[attributes]``: attribute key = column) and the judgment columns. A new
catalog is a new TOML file, never new code. Product files are JSON arrays
(``.json``, or one per ``.json.zip``), or anything
:func:`entrel.catalog.reader.read_table` reads (CSV, Parquet, JSONL).

Split ``"all-test"``: every query is a test query (a cross-domain
dataset: models come from ESCI, nothing is trained or chosen on it).
ESCI itself keeps its own reader and split (:mod:`entrel.offline.esci`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrel.catalog import CatalogItem
from entrel.catalog.reader import read_table
from entrel.offline import esci
from entrel.offline.training.examples import Label

__all__ = [
    "ALL_TEST_RULE",
    "DatasetError",
    "DatasetSpec",
    "ESCI",
    "is_cross_domain",
    "load",
    "load_named",
    "read_spec",
    "shipped",
    "spec_path",
]

log = logging.getLogger(__name__)

ESCI = "esci-us"
SPECS_DIR = Path(__file__).parent / "dataset_specs"
ALL_TEST_RULE = "cross-domain: every query is a test query (models trained on ESCI; nothing chosen here)"
_SPLITS = ("all-test",)
_DESCRIPTION_CHARS = 1000
_TAG = re.compile(r"<[^>]+>")


class DatasetError(esci.EsciDataError):
    """A dataset description or one of the files it names is missing or malformed."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset's TOML description says (see the module docstring)."""

    name: str
    directory: Path
    products: tuple[str, ...]
    judgments: str
    split: str
    # Logical field (id, title, brand, color) -> column; description: columns joined in order.
    columns: Mapping[str, str]
    description: tuple[str, ...]
    # Attribute key -> column.
    attributes: Mapping[str, str]
    # query, item, grade -> column of the judgments file.
    judgment_columns: Mapping[str, str]


def shipped() -> list[str]:
    """Names of the dataset descriptions shipped with entrel, besides ESCI."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def spec_path(name: str) -> Path:
    """The shipped description of `name`; an error lists the known ones."""
    path = SPECS_DIR / f"{name}.toml"
    if not path.is_file():
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join([ESCI, *shipped()])} (or --data-spec FILE.toml)")
    return path


def _section(raw: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise DatasetError(f"{path}: [{key}] must be a table")
    return value


def read_spec(path: str | os.PathLike[str]) -> DatasetSpec:
    """Parse and check a dataset description; a relative `directory` is taken from the working directory
    (``../shared/...`` is the shared folder beside a checkout run from its root, as for ESCI)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DatasetError(f"cannot read dataset description {path}: {exc}") from None
    columns = _section(raw, "columns", path)
    judgment_columns = _section(raw, "judgment_columns", path)
    missing = [f"columns.{k}" for k in ("id", "title") if k not in columns]
    missing += [f"judgment_columns.{k}" for k in ("query", "item", "grade") if k not in judgment_columns]
    missing += [k for k in ("name", "directory", "products", "judgments") if k not in raw]
    if missing:
        raise DatasetError(f"dataset description {path} lacks {', '.join(missing)}")
    if raw.get("split", "all-test") not in _SPLITS:
        raise DatasetError(f"{path}: split must be one of {', '.join(_SPLITS)}")
    description = columns.pop("description", ())
    return DatasetSpec(
        name=raw["name"],
        directory=Path(raw["directory"]).resolve(),
        products=tuple(raw["products"]),
        judgments=raw["judgments"],
        split=raw.get("split", "all-test"),
        columns={k: str(v) for k, v in columns.items()},
        description=(description,) if isinstance(description, str) else tuple(description),
        attributes={str(k): str(v) for k, v in _section(raw, "attributes", path).items()},
        judgment_columns={k: str(v) for k, v in judgment_columns.items()},
    )


def _records(path: Path, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Products of one file as dicts of `columns` (absent ones left out).

    JSON arrays are parsed with the json module: Icecat-like catalogs carry
    thousands of sparse attribute keys, which a data frame would turn into
    thousands of columns (seconds per file) to keep a handful.
    """
    if path.name.endswith(".json.zip"):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                for doc in json.loads(archive.read(member)):
                    yield {c: doc[c] for c in columns if c in doc}
    elif path.suffix == ".json":
        for doc in json.loads(path.read_bytes()):
            yield {c: doc[c] for c in columns if c in doc}
    else:
        frame = read_table(path, what="products")
        yield from frame.select(c for c in columns if c in frame.columns).iter_rows(named=True)


def _text(value: Any) -> str:
    """A field as stripped text: "" for null, lists joined with ", "."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value if v is not None)
    return str(value).strip()


def _item(record: Mapping[str, Any], spec: DatasetSpec) -> CatalogItem:
    field = {name: _text(record.get(column)) for name, column in spec.columns.items()}
    description = " ".join(_TAG.sub(" ", _text(record.get(c))) for c in spec.description)
    attributes = {key: _text(record.get(column)) for key, column in spec.attributes.items()}
    return CatalogItem(
        item_id=field["id"],
        title=field["title"],
        description=" ".join(description.split())[:_DESCRIPTION_CHARS].strip(),
        brand=field.get("brand", ""),
        color=field.get("color", ""),
        attributes={key: value for key, value in attributes.items() if value},
    )


def _products(spec: DatasetSpec) -> dict[str, CatalogItem]:
    """Every product of the files, by id (the first of duplicate ids kept; rows without an id dropped)."""
    files = sorted({p for pattern in spec.products for p in spec.directory.glob(pattern)})
    if not files:
        raise DatasetError(f"no product files match {list(spec.products)} in {spec.directory}")
    columns = list(dict.fromkeys([*spec.columns.values(), *spec.description, *spec.attributes.values()]))
    items: dict[str, CatalogItem] = {}
    for path in files:
        for record in _records(path, columns):
            item = _item(record, spec)
            if item.item_id:
                items.setdefault(item.item_id, item)
    if not items:
        raise DatasetError(f"product files of {spec.name} have no ids in column {spec.columns['id']!r} (columns.id)")
    return items


def _labels(spec: DatasetSpec) -> tuple[Label, ...]:
    path = spec.directory / spec.judgments
    frame = read_table(path, what="judgments")
    names = spec.judgment_columns
    absent = [c for c in names.values() if c not in frame.columns]
    if absent:
        raise DatasetError(f"judgments {path} have no column(s) {', '.join(absent)}; its columns: {', '.join(frame.columns)}")
    try:
        return tuple(
            Label(str(q).strip(), str(i).strip(), int(g))
            for q, i, g in frame.select(names["query"], names["item"], names["grade"]).iter_rows()
        )
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"judgments {path}: a grade is not an integer ({exc})") from None


def load(spec: DatasetSpec, directory: str | os.PathLike[str] | None = None) -> esci.EsciData:
    """Products, labels and split of `spec` (its folder, or `directory`), every judged product checked."""
    if directory is not None:
        spec = DatasetSpec(**{**spec.__dict__, "directory": Path(directory)})
    if not spec.directory.is_dir():
        raise DatasetError(f"{spec.name} data folder not found: {spec.directory}; pass --data DIR")
    items = _products(spec)
    labels = _labels(spec)
    unknown = sorted({lab.item_id for lab in labels} - items.keys())
    if unknown:
        raise DatasetError(f"{len(unknown)} judged products of {spec.name} are not in its product files, e.g. {unknown[:3]}")
    queries = tuple(sorted({lab.query for lab in labels}))
    split = esci.Split((), (), queries, rule=ALL_TEST_RULE)
    log.info("dataset loaded", extra={"dataset": spec.name, "products": len(items), "labels": len(labels), "test": len(queries)})
    return esci.EsciData(items, labels, split)


def is_cross_domain(name: str = ESCI, spec_file: str | os.PathLike[str] | None = None) -> bool:
    """Whether that dataset has no training queries (known from its description, before loading it)."""
    if spec_file is None and name == ESCI:
        return False
    return read_spec(spec_file if spec_file is not None else spec_path(name)).split == "all-test"


def load_named(
    name: str = ESCI, directory: str | os.PathLike[str] | None = None, spec_file: str | os.PathLike[str] | None = None
) -> tuple[str, esci.EsciData]:
    """ESCI (the default), a shipped dataset by name, or the dataset of a description file: its name and data."""
    if spec_file is None and name == ESCI:
        return ESCI, esci.load(directory)
    spec = read_spec(spec_file if spec_file is not None else spec_path(name))
    return spec.name, load(spec, directory)
