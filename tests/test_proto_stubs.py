"""The committed build step regenerates stubs identical to those in src/ (else they are stale)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stubs_match_proto(tmp_path):
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    fresh = generate.generate(tmp_path)
    assert fresh, "protoc produced nothing"
    for path in fresh:
        current = ROOT / "src" / path.relative_to(tmp_path)
        assert current.is_file(), f"{current} missing: run `make proto`"
        assert current.read_text() == path.read_text(), f"{current} is stale: run `make proto`"
