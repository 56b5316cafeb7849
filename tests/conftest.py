"""Shared fixtures: a real small trained cross-encoder, a small catalog, a nightly snapshot, a live server.

The model is MiniLM-L6 fine-tuned briefly on the demo data (about a minute
on two cores), cached under .pytest_cache keyed by the training code and
data, so local re-runs reuse it and any change retrains it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from entrel.config import DEMO_DATA, Settings, load_settings

# The checkout under test (the tests run against an editable install of it).
PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEST_TRAINING = ["train.synthetic_queries=600", "train.pretrain_epochs=1", "train.epochs=1"]


# float32 scores do not depend on how pairs are batched, so cached == live can
# be asserted to 1e-4; bfloat16 (the CPU default where native) is tested on its own.
TEST_DTYPE = "float32"


def _training_key() -> str:
    digest = hashlib.sha256()
    sources = sorted((PROJECT_ROOT / "offline" / "training").glob("*.py")) + [
        PROJECT_ROOT / "offline" / "train.py",
        Path(__file__),  # the data slice is chosen here
        # Reading catalogs and extracting entities (extractor.py and the modules it orchestrates).
        *sorted((PROJECT_ROOT / "src" / "entrel" / "catalog").glob("*.py")),
        DEMO_DATA / "catalog.csv",
        DEMO_DATA / "labels.csv",
    ]
    for path in sources:
        digest.update(path.read_bytes())
    digest.update(repr(TEST_TRAINING).encode())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A slice of the demo data: three product types, their queries and labels."""
    root = tmp_path_factory.mktemp("small-data")
    catalog = pl.read_csv(DEMO_DATA / "catalog.csv", infer_schema=False)
    # Category or title: a third of the rows name their type only in the title.
    keep = catalog.filter(
        pl.concat_str(pl.col("category").fill_null(""), pl.col("title")).str.contains(
            "(?i)office chair|running shoe|water bottle"
        )
    )
    keep.write_csv(root / "catalog.csv")
    wanted = "(?i)chair|running|shoe|bottle"
    pl.read_csv(DEMO_DATA / "query_log.csv").filter(pl.col("query").str.contains(wanted)).write_csv(root / "query_log.csv")
    labels = pl.read_csv(DEMO_DATA / "labels.csv", infer_schema=False)
    labels.filter(pl.col("query").str.contains(wanted) & pl.col("item_id").is_in(keep["item_id"].implode())).write_csv(
        root / "labels.csv"
    )
    return {name: str(root / f"{name}.csv") for name in ("catalog", "query_log", "labels")}


@pytest.fixture(scope="session")
def trained_model(request: pytest.FixtureRequest, small_data: dict[str, str]) -> str:
    """Path of a real MiniLM cross-encoder trained by `entrel train` on the small slice."""
    from entrel.offline import train
    from entrel.scoring import MODEL_INFO_FILE

    directory = Path(request.config.cache.mkdir("entrel-models")) / _training_key()
    if not (directory / MODEL_INFO_FILE).is_file():
        settings = load_settings(
            overrides=[*TEST_TRAINING, f"catalog.path={small_data['catalog']}", f"train.labels={small_data['labels']}"]
        )
        train.run(settings, output=str(directory), progress=False)
    return str(directory)


def make_settings(data_dir: Path, model: str, small_data: dict[str, str], *extra: str) -> Settings:
    return load_settings(
        overrides=[
            f"data_dir={data_dir}",
            f"model.name_or_path={model}",
            f"catalog.path={small_data['catalog']}",
            f"nightly.query_log={small_data['query_log']}",
            "server.port=0",
            f"model.dtype={TEST_DTYPE}",
            "server.reload_interval_s=0.1",
            *extra,
        ]
    )


@pytest.fixture(scope="session")
def served_settings(tmp_path_factory: pytest.TempPathFactory, trained_model: str, small_data: dict[str, str]) -> Settings:
    """Settings whose data_dir holds a promoted snapshot from a real nightly run."""
    from entrel.offline import nightly

    settings = make_settings(tmp_path_factory.mktemp("served"), trained_model, small_data)
    nightly.run(settings, progress=False)
    return settings


@pytest.fixture(scope="session")
def scorer(trained_model: str):
    from entrel.config import ModelSettings
    from entrel.scoring import CrossEncoderScorer

    return CrossEncoderScorer(ModelSettings(name_or_path=trained_model, dtype=TEST_DTYPE))


@pytest.fixture
def server(served_settings: Settings, scorer) -> Iterator:
    """A real gRPC server on a loopback port, over the nightly snapshot."""
    from entrel.service.server import RelevanceServer

    running = RelevanceServer(served_settings, scorer=scorer).start()
    yield running
    running.stop(grace=1)


@pytest.fixture
def client(server) -> Iterator:
    from entrel.service.client import RelevanceClient

    with RelevanceClient(f"127.0.0.1:{server.port}") as c:
        yield c
