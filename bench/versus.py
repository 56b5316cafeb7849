"""Before and after in one run: this checkout against another version of entrel, interleaved.

    python -m entrel.bench.versus --base /tmp/base-tree [--data-dir var/bench] [--set KEY=VALUE] [--rounds 100]

`--base` goes first on the other version's PYTHONPATH: a directory holding an
``entrel`` package laid out like the wheel (``entrel/`` with ``offline/`` and
``bench/`` inside; .ci/gate builds such a tree of symlinks). Both versions
serve the snapshot promoted in ``--data-dir`` (``entrel bench`` builds the
demo one in var/bench); the machine may be busy, so nothing is compared
across runs:

* over gRPC, one server per version: every round times each call shape on
  both, alternating which goes first: ScoreBatch of 10 cached groups of 100
  items, the same as 10 ScoreItems calls, one ScoreItems (client ms and the
  server's own total_ms);
* in process, no gRPC: a child process per version takes turns timing
  ``RelevanceEngine.score`` and the servicer's ScoreItems (the engine plus
  the response's bytes: a version whose servicer returns a message has it
  serialised inside the timed span too) on the same cached requests, in wall time and in
  the thread's CPU time (which a busy machine's scheduling does not inflate).

Only interfaces both versions have are used, so the base can be any recent commit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from entrel.bench.workload import BenchRequest, Workload
from entrel.cache import SnapshotStore
from entrel.config import load_settings
from entrel.service.process import ServerProcess, serving
from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["main"]

GROUPS = 10

# Run by each version's interpreter: times its engine and servicer in process; prints JSON.
_CHILD = r"""
import json, sys, time
import numpy as np
from entrel.cache import SnapshotStore
from entrel.config import load_settings
from entrel.service.batcher import MicroBatcher
from entrel.service.engine import RelevanceEngine
try:
    from entrel.service.requests import ItemRequest
except ImportError:  # versions before the request types had a module of their own
    from entrel.service.engine import ItemRequest
from entrel.service.grpc_service import RelevanceServicer
from entrel.v1 import relevance_pb2 as pb

args = json.loads(sys.argv[1])
settings = load_settings(overrides=args["sets"])
store = SnapshotStore(settings.snapshot_root)
snap = store.open(store.current_id())

class Fixed:
    def current(self):
        return snap

class NoModel:
    fingerprint = snap.manifest.model_fingerprint
    def score(self, pairs):
        raise AssertionError("a cached request reached the model")

class CachedVectorsOnly:  # the similarity term on, served from the snapshot's query vectors
    def encode_query(self, query, until):
        raise AssertionError("a cached request's query vector was missing")

class Context:
    def time_remaining(self):
        return None
    def abort(self, code, details):
        raise RuntimeError(code, details)

batcher = MicroBatcher(NoModel(), 64, 0.001, 1000)
engine = RelevanceEngine(settings, NoModel.fingerprint, Fixed(), batcher, encoder=CachedVectorsOnly())
servicer = RelevanceServicer(engine)
calls = [(q, [ItemRequest(i) for i in ids]) for q, ids in args["requests"]]
protos = [pb.ScoreItemsRequest(query=q, items=[pb.ItemRef(item_id=i) for i in ids]) for q, ids in args["requests"]]
for (q, items), request in zip(calls, protos):
    engine.score(q, items)
    servicer.ScoreItems(request, Context())
out = {"engine_us": [], "servicer_us": [], "engine_cpu_us": [], "servicer_cpu_us": []}
deadline = time.perf_counter() + args["seconds"]
while time.perf_counter() < deadline:
    for (q, items), request in zip(calls, protos):
        t, c = time.perf_counter(), time.thread_time()
        engine.score(q, items)
        out["engine_us"].append((time.perf_counter() - t) * 1e6)
        out["engine_cpu_us"].append((time.thread_time() - c) * 1e6)
        t, c = time.perf_counter(), time.thread_time()
        answered = servicer.ScoreItems(request, Context())
        if not isinstance(answered, bytes):  # a version whose servicer returns a message: serialised, as gRPC would
            answered.SerializeToString()
        out["servicer_us"].append((time.perf_counter() - t) * 1e6)
        out["servicer_cpu_us"].append((time.thread_time() - c) * 1e6)
print(json.dumps(out))
"""


@contextmanager
def _environment(base: str | None) -> Iterator[None]:
    """PYTHONPATH for the base version's subprocesses (unchanged for this checkout)."""
    before = os.environ.get("PYTHONPATH")
    if base is not None:
        os.environ["PYTHONPATH"] = base if before is None else f"{base}{os.pathsep}{before}"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _grpc(servers: dict[str, ServerProcess], requests: list[BenchRequest], rounds: int) -> dict[str, Any]:
    chosen = [requests[k % len(requests)] for k in range(GROUPS)]
    singles = [pb.ScoreItemsRequest(query=r.query, items=[pb.ItemRef(item_id=i) for i in r.item_ids]) for r in chosen]
    batch = pb.ScoreBatchRequest(groups=singles)
    channels = {name: grpc.insecure_channel(s.address) for name, s in servers.items()}
    stubs = {name: pb_grpc.RelevanceStub(c) for name, c in channels.items()}
    samples: dict[str, dict[str, list[float]]] = {
        name: {"batch_ms": [], "separate_ms": [], "single_ms": [], "single_server_ms": []} for name in servers
    }
    answers = {name: stub.ScoreBatch(batch, timeout=30) for name, stub in stubs.items()}
    first, second = answers.values()
    same = all(
        [i.score for i in a.items] == [i.score for i in b.items] and [i.status for i in a.items] == [i.status for i in b.items]
        for a, b in zip(first.groups, second.groups, strict=True)
    )
    hits = sum(g.metadata.cache_hits for g in first.groups)
    misses = sum(g.metadata.cache_misses for g in first.groups)
    names = list(servers)
    for k in range(rounds):
        for name in names if k % 2 == 0 else names[::-1]:
            stub, s = stubs[name], samples[name]
            started = time.perf_counter()
            stub.ScoreBatch(batch, timeout=30)
            s["batch_ms"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            for single in singles:
                stub.ScoreItems(single, timeout=30)
            s["separate_ms"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            reply = stub.ScoreItems(singles[k % GROUPS], timeout=30)
            s["single_ms"].append((time.perf_counter() - started) * 1000)
            s["single_server_ms"].append(reply.metadata.total_ms)
    for channel in channels.values():
        channel.close()
    medians = {name: {key: round(float(np.median(v)), 3) for key, v in s.items()} for name, s in samples.items()}
    for m in medians.values():
        m["batch_throughput_ratio"] = round(m["separate_ms"] / m["batch_ms"], 2)
    return {"same_scores_and_statuses": same, "hit_rate": hits / max(1, hits + misses), "medians": medians}


def _in_process(trees: dict[str, str | None], sets: list[str], requests: list[BenchRequest], turns: int) -> dict[str, Any]:
    payload = json.dumps({"sets": sets, "requests": [(r.query, list(r.item_ids)) for r in requests], "seconds": 2.0})
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for k in range(turns):
        for name in list(trees) if k % 2 == 0 else list(trees)[::-1]:
            with _environment(trees[name]):
                done = subprocess.run([sys.executable, "-c", _CHILD, payload], capture_output=True, text=True, check=True)
            for key, values in json.loads(done.stdout).items():
                samples[name].setdefault(key, []).extend(values)
    return {name: {key: round(float(np.median(v)), 1) for key, v in s.items()} for name, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m entrel.bench.versus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="PYTHONPATH entry holding the other version's entrel package")
    parser.add_argument("--rounds", type=int, default=100, help="gRPC rounds (each times every call shape on both)")
    parser.add_argument("--turns", type=int, default=4, help="in-process turns per version (2 s each)")
    parser.add_argument("--data-dir", default="var/bench", help="a data dir with a promoted snapshot (entrel bench's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for both servers")
    parser.add_argument("--out", default="versus.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sets = [f"data_dir={args.data_dir}", *args.set]
    store = SnapshotStore(load_settings(overrides=sets).snapshot_root)
    current = store.current_id()
    if current is None:
        raise SystemExit(f"no snapshot in {args.data_dir}: run `entrel bench` (it builds var/bench) or the nightly first")
    requests = Workload(store.open(current)).at_hit_rate(1.0, 16)
    server_args = [f"--set={s}" for s in sets]
    trees: dict[str, str | None] = {"base": str(Path(args.base).resolve()), "this": None}
    results: dict[str, Any] = {"base": trees["base"], "requests": len(requests), "rounds": args.rounds}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="entrel-versus-") as logs:
        servers = {}
        for name, tree in trees.items():
            with _environment(tree):
                servers[name] = stack.enter_context(serving(server_args, Path(logs) / f"{name}.log"))
        results["grpc"] = _grpc(servers, requests, args.rounds)
    results["in_process"] = _in_process(trees, sets, requests, args.turns)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
