"""Settings: defaults work, files and overrides apply, mistakes are named."""

import pytest

from entrel.config import ConfigError, load_settings


def test_defaults_point_at_the_demo_data():
    s = load_settings()
    assert s.catalog.path.endswith("data/demo/catalog.csv")
    assert s.logic.tnorm == "product"


def test_file_then_overrides(tmp_path):
    path = tmp_path / "entrel.toml"
    path.write_text('data_dir = "elsewhere"\n[logic]\ntnorm = "min"\n[catalog.columns]\nid = "sku"\n')
    s = load_settings(path, ["logic.prior=0.25", "server.port=7000"])
    assert (s.data_dir, s.logic.tnorm, s.logic.prior, s.server.port) == ("elsewhere", "min", 0.25, 7000)
    assert s.catalog.columns.id == "sku"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[logic]\ntnrom = 'min'\n", "unknown setting logic.tnrom"),
        ("[logc]\n", "unknown setting logc"),
        ("[logic]\ntnorm = 'max'\n", "logic.tnorm must be one of"),
        ("[server]\nport = 'x'\n", "server.port: expected int"),
        ("[logic]\nprior = 2.0\n", "logic.prior must be within"),
        ("[extraction]\nmax_model_names = -1\n", "extraction.max_model_names must not be negative"),
        ("[extraction]\nmax_phrases = -1\n", "extraction.max_phrases must not be negative"),
        ("not toml ===", "not valid TOML"),
    ],
)
def test_mistakes_are_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_missing_file_and_bad_override():
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("/nonexistent/entrel.toml")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_settings(overrides=["logic.tnorm"])
