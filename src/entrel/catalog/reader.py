"""Reading product catalogs (CSV, Parquet, JSONL) with polars into one canonical shape."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from entrel.config import CatalogSettings
from entrel.errors import EntrelError

__all__ = ["CatalogError", "CatalogItem", "iter_items", "parse_attributes", "read_catalog", "read_table"]

log = logging.getLogger(__name__)

_SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_REQUIRED = ("id", "title")
_OPTIONAL_TEXT = ("description", "brand", "color")


class CatalogError(EntrelError, ValueError):
    """The catalog cannot be read; the message names the file or column."""


@dataclass(frozen=True)
class CatalogItem:
    """One product, whatever file it came from (or inline in a gRPC request)."""

    item_id: str
    title: str
    description: str = ""
    brand: str = ""
    color: str = ""
    category: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


def item_text(item: CatalogItem) -> str:
    """How a product reads to a text model: ``title; brand: B; color: C``, leaving out empty fields.

    One definition for the nightly item vectors, inline items at serving
    time and the evaluation's bi-encoder baselines, so they compare alike.
    """
    fields = [f"{name}: {value}" for name, value in (("brand", item.brand), ("color", item.color)) if value]
    return "; ".join([item.title, *fields])


def read_table(path: str | Path, fmt: str = "auto", what: str = "catalog") -> pl.DataFrame:
    """Read a CSV (all columns as strings), Parquet or JSONL file; errors name `what` and the path."""
    path = Path(path)
    if fmt == "auto":
        try:
            fmt = _SUFFIX_FORMATS[path.suffix.lower()]
        except KeyError:
            raise CatalogError(
                f"cannot tell the format of {what} {path} from its suffix (.csv, .parquet, .jsonl); set the format explicitly"
            ) from None
    if not path.is_file():
        raise CatalogError(f"{what} file not found: {path}")
    try:
        if fmt == "csv":
            return pl.read_csv(path, infer_schema=False)  # all strings: ids stay ids
        if fmt == "parquet":
            return pl.read_parquet(path)
        return pl.read_ndjson(path, infer_schema_length=None)
    except Exception as exc:  # polars raises many types; all mean "unreadable"
        raise CatalogError(f"cannot read {what} {path} as {fmt}: {exc}") from exc


def _category_expr(dtype: pl.DataType, column: str, separator: str) -> pl.Expr:
    col = pl.col(column)
    if isinstance(dtype, pl.List):
        return col.cast(pl.List(pl.String))
    return col.cast(pl.String).str.split(separator)


def read_catalog(settings: CatalogSettings) -> pl.DataFrame:
    """Read the catalog into columns item_id, title, description, brand, color,
    category (list of str), attributes (str: JSON object).

    Rows without an id are dropped, and of duplicate ids the first is kept;
    both are logged with counts.
    """
    path = Path(settings.path)
    frame = read_table(path, settings.format)
    cols = settings.columns
    for logical in _REQUIRED:
        name = getattr(cols, logical)
        if name not in frame.columns:
            raise CatalogError(
                f"catalog {path} has no column {name!r} (mapped to {logical}; set catalog.columns.{logical}); "
                f"its columns are: {', '.join(frame.columns)}"
            )
    schema = frame.schema
    exprs = [
        pl.col(cols.id).cast(pl.String).str.strip_chars().alias("item_id"),
        pl.col(cols.title).cast(pl.String).fill_null("").alias("title"),
    ]
    for logical in _OPTIONAL_TEXT:
        name = getattr(cols, logical)
        expr = pl.col(name).cast(pl.String).fill_null("") if name in schema else pl.lit("")
        exprs.append(expr.alias(logical))
    if cols.category in schema:
        category = _category_expr(schema[cols.category], cols.category, settings.category_separator)
        exprs.append(
            category.list.eval(pl.element().str.strip_chars())
            .list.eval(pl.element().filter(pl.element() != ""))
            .fill_null([])
            .alias("category")
        )
    else:
        exprs.append(pl.lit([], dtype=pl.List(pl.String)).alias("category"))
    if cols.attributes in schema:
        dtype = schema[cols.attributes]
        attr = pl.col(cols.attributes)
        attr = attr.struct.json_encode() if isinstance(dtype, pl.Struct) else attr.cast(pl.String)
        exprs.append(attr.fill_null("").alias("attributes"))
    else:
        exprs.append(pl.lit("").alias("attributes"))
    out = frame.select(exprs)
    before = out.height
    out = out.filter(pl.col("item_id").is_not_null() & (pl.col("item_id") != ""))
    if out.height < before:
        log.warning("catalog rows without an id dropped", extra={"path": str(path), "dropped": before - out.height})
    deduped = out.unique(subset="item_id", keep="first", maintain_order=True)
    if deduped.height < out.height:
        log.warning(
            "duplicate catalog ids: first row kept",
            extra={"path": str(path), "dropped": out.height - deduped.height},
        )
    return deduped


def parse_attributes(raw: str) -> dict[str, str]:
    """A JSON object or ``key: value; key: value`` string as a flat str->str dict."""
    raw = raw.strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return {str(k): "" if v is None else str(v) for k, v in data.items() if v not in (None, "")}
    pairs = {}
    for part in raw.split(";"):
        key, sep, value = part.partition(":")
        if sep and key.strip() and value.strip():
            pairs[key.strip()] = value.strip()
    return pairs


def iter_items(frame: pl.DataFrame) -> Iterator[CatalogItem]:
    """The rows of a frame from :func:`read_catalog` as :class:`CatalogItem`."""
    for row in frame.iter_rows(named=True):
        yield CatalogItem(
            item_id=row["item_id"],
            title=row["title"],
            description=row["description"],
            brand=row["brand"],
            color=row["color"],
            category=tuple(row["category"] or ()),
            attributes=parse_attributes(row["attributes"]),
        )
