"""The stubs the package imports are exactly what proto/ generates now.

`make test` no longer regenerates them first (the install's build step does, once),
so editing proto/ without `make proto` fails here instead of going unnoticed.
"""

import importlib.util
from pathlib import Path

from entrel.v1 import relevance_pb2

ROOT = Path(__file__).resolve().parents[1]


def test_imported_stubs_match_proto(tmp_path):
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    fresh = generate.generate(tmp_path)
    assert {p.name for p in fresh} >= {"relevance_pb2.py", "relevance_pb2_grpc.py", "relevance_pb2.pyi"}
    imported = Path(relevance_pb2.__file__).parent
    for path in fresh:
        current = imported / path.name
        assert current.is_file(), f"{current} missing: run `make proto`"
        assert current.read_text() == path.read_text(), f"{current} is stale: run `make proto`"
