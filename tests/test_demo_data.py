"""The embedded demo data has the size and the noise the rest of entrel is built for.

Every later stage (extraction, nightly precompute, training, evaluation) runs
on these files by default, so their properties are checked here rather than
assumed: enough products and types, structured columns that are often empty
while the title still carries the value, a skewed query log, and labels that
agree with the catalog and the log.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from entrel.catalog import parse_attributes, read_catalog
from entrel.config import DEMO_DATA, CatalogSettings, NightlySettings, TrainSettings
from entrel.text import normalize

FILES = ("catalog.csv", "query_log.csv", "labels.csv")


@pytest.fixture(scope="module")
def catalog() -> pl.DataFrame:
    return read_catalog(CatalogSettings())


@pytest.fixture(scope="module")
def query_log() -> pl.DataFrame:
    return pl.read_csv(NightlySettings().query_log, schema={"query": pl.String, "count": pl.Int64})


@pytest.fixture(scope="module")
def labels() -> pl.DataFrame:
    return pl.read_csv(TrainSettings().labels, schema={"query": pl.String, "item_id": pl.String, "grade": pl.Int64})


def test_catalog_header_is_the_documented_one() -> None:
    header = (DEMO_DATA / "catalog.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "item_id,title,description,brand,color,category,attributes"


def test_catalog_reads_with_default_settings(catalog: pl.DataFrame) -> None:
    assert catalog.height >= 300
    assert catalog["item_id"].n_unique() == catalog.height
    assert catalog["item_id"].str.contains(r"^D\d{4}$").all()
    assert (catalog["title"].str.len_chars() > 10).all()


def test_catalog_spans_many_product_types(catalog: pl.DataFrame) -> None:
    leaves = catalog["category"].list.last().drop_nulls()
    assert leaves.n_unique() >= 8
    # Some rows have no category at all: the type must come from the title.
    assert 0 < (catalog["category"].list.len() == 0).sum() < catalog.height * 0.25


def test_brand_column_is_often_empty_but_the_title_names_the_brand(catalog: pl.DataFrame) -> None:
    brands = sorted(b for b in catalog["brand"].unique().to_list() if b)
    assert len(brands) >= 10
    empty = catalog.filter(pl.col("brand") == "")
    assert catalog.height * 0.2 <= empty.height <= catalog.height * 0.5
    named = [t for t in empty["title"].to_list() if any(b.lower() in t.lower() for b in brands)]
    assert len(named) >= 0.9 * empty.height


def test_some_colors_are_only_in_the_description(catalog: pl.DataFrame) -> None:
    colors = {c.lower() for c in catalog["color"].unique().to_list() if c} | {"grey", "navy"}
    assert len(colors) >= 12

    def mentions(text: str) -> bool:
        return any(c in text.lower() for c in colors)

    only_described = [
        row
        for row in catalog.filter(pl.col("color") == "").iter_rows(named=True)
        if not mentions(row["title"]) and mentions(row["description"])
    ]
    assert len(only_described) >= 5


def test_attributes_are_parseable_and_filled_for_about_half(catalog: pl.DataFrame) -> None:
    filled = [a for a in catalog["attributes"].to_list() if a]
    assert 0.3 * catalog.height <= len(filled) <= 0.7 * catalog.height
    keys = {k for a in filled for k in parse_attributes(a)}
    assert {"material", "size", "audience"} <= keys <= {"material", "size", "audience", "style", "connectivity", "quantity"}


def test_query_log_is_large_and_skewed(query_log: pl.DataFrame) -> None:
    queries = query_log["query"].to_list()
    assert len(queries) >= 200
    assert len(set(queries)) == len(queries)
    assert len({normalize(q) for q in queries}) == len(queries)  # distinct after normalisation too
    counts = query_log["count"]
    assert counts.min() >= 1
    assert counts.max() >= 1000  # a head in the thousands
    assert (counts <= 3).sum() >= 20  # and a long tail
    top_tenth = counts.sort(descending=True).head(len(queries) // 10).sum()
    assert top_tenth >= 0.5 * counts.sum()


def test_labels_cover_enough_queries_with_graded_items(labels: pl.DataFrame) -> None:
    assert labels["query"].n_unique() >= 40
    assert labels["grade"].is_between(0, 3).all()
    assert labels.select("query", "item_id").is_duplicated().sum() == 0
    per_query = labels.group_by("query").len()["len"]
    assert per_query.min() >= 20 and per_query.max() <= 40
    assert sorted(labels["grade"].unique().to_list()) == [0, 1, 2, 3]


def test_labels_refer_to_the_catalog_and_the_log(labels: pl.DataFrame, catalog: pl.DataFrame, query_log: pl.DataFrame) -> None:
    assert labels.join(catalog, on="item_id", how="anti").height == 0
    assert labels.join(query_log, on="query", how="anti").height == 0


def test_labels_agree_with_catalog_types(labels: pl.DataFrame, catalog: pl.DataFrame) -> None:
    """Exact and substitute items of one query are all of one product type (category leaf)."""
    leaf = catalog.select("item_id", pl.col("category").list.last().alias("leaf"))
    same_type = labels.filter(pl.col("grade") >= 2).join(leaf, on="item_id").drop_nulls("leaf")
    assert (same_type.group_by("query").agg(pl.col("leaf").n_unique())["leaf"] == 1).all()
    # Hard negatives: most queries have same-type items that miss a stated attribute.
    with_substitutes = labels.filter(pl.col("grade") == 2)["query"].n_unique()
    assert with_substitutes >= 0.6 * labels["query"].n_unique()
    # Some queries ask for what the catalog does not have exactly.
    best = labels.group_by("query").agg(pl.col("grade").max())
    assert (best["grade"] < 3).sum() >= 3


def test_generator_rewrites_the_committed_files(tmp_path: Path) -> None:
    script = DEMO_DATA / "generate.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DEMO_DATA / name).read_bytes(), f"{name} is stale: rerun {script}"
