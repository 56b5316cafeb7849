"""Judged datasets from a TOML description: the columns are configuration, the shape is esci.EsciData."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from entrel.cli import main
from entrel.config import Settings
from entrel.errors import EntrelError
from entrel.offline import datasets, evaluate
from entrel.offline.datasets import DatasetError

CHORUS = datasets.read_spec(datasets.spec_path("chorus-icecat"))
needs_chorus = pytest.mark.skipif(
    not (CHORUS.directory / CHORUS.judgments).is_file(), reason=f"chorus-icecat data not found at {CHORUS.directory}"
)

SPEC = """
name = "tiny"
directory = "{directory}"
products = ["products/*.json.zip"]
judgments = "judged.csv"
split = "all-test"

[columns]
id = "sku"
title = "name"
brand = "maker"
color = "attr_colour"
description = ["blurb", "notes"]

[attributes]
"product type" = "attr_kind"
connector = "attr_plug"

[judgment_columns]
query = "q"
item = "product"
grade = "stars"
"""


def _tiny(tmp_path, products: list[dict], judged: str, spec: str = SPEC):
    (tmp_path / "products").mkdir()
    half = len(products) // 2
    for n, part in enumerate((products[:half], products[half:])):
        with zipfile.ZipFile(tmp_path / "products" / f"{n}.json.zip", "w") as z:
            z.writestr(f"{n}.json", json.dumps(part))
    (tmp_path / "judged.csv").write_text(judged)
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(spec.format(directory=tmp_path))
    return spec_file


PRODUCTS = [
    {
        "sku": "1",
        "name": "Acme USB-C cable 2m",
        "maker": "Acme",
        "attr_colour": "Black",
        "blurb": "Fast <br />charging",
        "attr_kind": "Cable",
        "attr_plug": "USB C",
        "price": 995,
    },
    {"sku": "2", "name": "Bolt HDMI cable", "maker": "Bolt", "notes": "4K", "attr_kind": "Cable"},
    {"sku": "3", "name": "Acme toner", "maker": "Acme", "attr_colour": None, "ean": ["1", "2"]},
    {"sku": "4", "name": "Unjudged mouse", "maker": "Zed"},
]


def test_a_catalog_is_mapped_by_its_description_alone(tmp_path):
    spec_file = _tiny(tmp_path, PRODUCTS, "q,product,stars\nusb c cable,1,3\nusb c cable,2,1\ntoner,3,2\n")
    name, data = datasets.load_named(spec_file=spec_file)
    assert name == "tiny" and set(data.items) == {"1", "2", "3", "4"}
    cable = data.items["1"]
    assert (cable.title, cable.brand, cable.color) == ("Acme USB-C cable 2m", "Acme", "Black")
    assert cable.description == "Fast charging", "HTML tags dropped, whitespace collapsed"
    assert dict(cable.attributes) == {"product type": "Cable", "connector": "USB C"}
    assert data.items["2"].description == "4K" and data.items["3"].color == "" and not data.items["3"].attributes
    assert [(lab.query, lab.item_id, lab.grade) for lab in data.labels] == [
        ("usb c cable", "1", 3),
        ("usb c cable", "2", 1),
        ("toner", "3", 2),
    ]
    assert data.split.train == () and data.split.test == ("toner", "usb c cable")
    assert data.split.describe()["rule"] == datasets.ALL_TEST_RULE


def test_eval_reads_a_dataset_from_a_description_file(tmp_path, capsys):
    spec_file = _tiny(tmp_path, PRODUCTS, "q,product,stars\nusb c cable,1,3\nusb c cable,2,0\ntoner,3,3\ntoner,1,0\n")
    out = tmp_path / "r.json"
    args = [f"--set=data_dir={tmp_path / 'var'}", "eval", "--data-spec", str(spec_file), "--methods", "random,bm25"]
    assert main([*args, "--out", str(out), "--compare", "bm25:random", "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == "tiny" and report["split"]["test_queries"] == ["toner", "usb c cable"]
    assert report["methods"]["bm25"]["per_query_ndcg@10"] == {"toner": 1.0, "usb c cable": 1.0}
    assert "bm25 vs random: +" in capsys.readouterr().out
    assert main([*args, "--out", str(out), "--compare", "bm25:entrel"]) == 2
    assert "--compare names rows this run does not make: entrel" in capsys.readouterr().err


def test_the_cross_domain_row_serves_every_saved_esci_seed(tmp_path):
    from entrel.offline.methods.cross_domain import esci_models

    with pytest.raises(EntrelError, match="run `entrel eval --methods entrel` on ESCI first"):
        esci_models(tmp_path, quick=False)
    for name in ("entrel-esci", "entrel-esci-seed-43", "entrel-esci-seed-44", "entrel-esci-seed-45-partial", "entrel-esci-quick"):
        (tmp_path / name).mkdir()
        if not name.endswith("partial"):
            (tmp_path / name / "entrel_model.json").write_text("{}")
    assert [d.name for d in esci_models(tmp_path, quick=False)] == ["entrel-esci", "entrel-esci-seed-43", "entrel-esci-seed-44"]
    assert [d.name for d in esci_models(tmp_path, quick=True)] == ["entrel-esci-quick"]


def test_bad_descriptions_and_files_are_one_line_errors(tmp_path, capsys):
    spec_file = _tiny(tmp_path, PRODUCTS, "q,product,stars\ncable,9,3\n")
    with pytest.raises(DatasetError, match=r"1 judged products of tiny are not in its product files, e\.g\. \['9'\]"):
        datasets.load_named(spec_file=spec_file)
    spec_file.write_text(SPEC.format(directory=tmp_path).replace('grade = "stars"', ""))
    with pytest.raises(DatasetError, match="lacks judgment_columns.grade"):
        datasets.read_spec(spec_file)
    spec_file.write_text(SPEC.format(directory=tmp_path).replace('grade = "stars"', 'grade = "score"'))
    with pytest.raises(DatasetError, match="no column.*score"):
        datasets.load_named(spec_file=spec_file)
    with pytest.raises(DatasetError, match="unknown dataset 'nope'; known: esci-us, chorus-icecat"):
        datasets.spec_path("nope")
    args = ["eval", "--dataset", "chorus-icecat", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r.json")]
    assert main(args) == 2
    assert "chorus-icecat data folder not found" in capsys.readouterr().err


def test_the_chorus_description_maps_brand_colour_and_a_few_attributes():
    # The tests run from the checkout's root, beside ../shared.
    assert CHORUS.directory == (Path(__file__).resolve().parents[2] / "shared" / "data" / "chorus-icecat").resolve()
    assert (CHORUS.columns["brand"], CHORUS.columns["color"]) == ("supplier", "attr_t_product_colour")
    assert all(column.startswith("attr_t_") for column in CHORUS.attributes.values())
    assert 3 <= len(CHORUS.attributes) <= 8


@needs_chorus
def test_real_chorus_loads_every_judged_product_as_a_test_query():
    name, data = datasets.load_named("chorus-icecat")
    assert name == "chorus-icecat" and len(data.items) == 19_406 and len(data.labels) == 3_668
    assert len(data.split.test) == 135 and not data.split.train and not data.split.validation
    assert {lab.grade for lab in data.labels} == {0, 1, 2, 3}
    assert sum(bool(item.color) for item in data.items.values()) == 8_730
    assert all(item.title and item.brand for item in data.items.values())
    assert not any("<br" in item.description for item in data.items.values())
    assert any("product type" in item.attributes for item in data.items.values())


@needs_chorus
def test_chorus_runs_the_cross_domain_methods_with_fixed_choices(tmp_path, capsys):
    out = tmp_path / "chorus.json"
    settings = Settings().replace(data_dir=str(tmp_path / "var"))
    report = evaluate.run(
        settings, None, out, quick=True, method_names=["random", "bm25"], progress=False, dataset="chorus-icecat"
    )
    assert json.loads(out.read_text()) == report and report["dataset"] == "chorus-icecat"
    rows = report["methods"]
    test_queries = set(report["split"]["test_queries"])
    assert rows["random"]["runs"] == 20 and rows["random"]["ndcg@10_sd"] > 0
    assert set(rows["bm25"]["per_query_ndcg@10"]) == test_queries
    assert rows["bm25"]["item_text"] == "title+brand+color" and rows["bm25"]["validation_ndcg_at_10"] == {}
    assert rows["bm25"]["ndcg@10"] > rows["random"]["ndcg@10"]
    printed = capsys.readouterr().out
    assert re.search(r"^random vs bm25: -0\.\d{3} \[-0\.\d{3}, -?0\.\d{3}\]$", printed, re.MULTILINE)
    assert list(report["comparisons"]["pairs"]) == ["random vs bm25"]
    # Methods that train on the dataset do not run on a cross-domain one; the entrel row needs the ESCI model.
    args = [f"--set=data_dir={tmp_path / 'var'}", "eval", "--dataset", "chorus-icecat", "--out", str(out), "--no-progress"]
    assert main([*args, "--methods", "distillation"]) == 2
    assert "unknown evaluation method(s) for a cross-domain dataset: distillation" in capsys.readouterr().err
    assert main([*args, "--methods", "entrel"]) == 2
    err = capsys.readouterr().err
    assert "no ESCI entity model" in err and "entrel eval --methods entrel" in err and "Traceback" not in err
