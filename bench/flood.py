"""Inline flood and body fuzz against a real server: memory, cached latency, status codes.

Bounded in count and time, loopback only. Needs a promoted snapshot in the
configured data dir (`make demo` makes one)::

    python -m entrel.bench.flood [--config entrel.toml] [--set k=v] [--seconds 30] [--clients 16] [--fuzz 2000]

Starts `entrel serve` (or uses `--address` and `--pid` of a running one),
then for `--seconds` runs `--clients` threads sending inline items at the
largest sizes the limits allow, each request with novel text, while one
probe, in a process of its own (so the flooding threads' Python work
cannot delay it), sends a fully cached request every 50 ms and records its
latency on the client and the server's own time (`total_ms`). Server RSS is sampled from
/proc. Then `--fuzz` hostile bodies are sent raw. Prints a JSON report:
RSS before/peak/after, probe p50/p99, flood status codes and latencies,
fuzz status codes, miss log bytes written, load average.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from entrel.bench.hostile import fuzz_body, largest_inline_items, rss_mb
from entrel.cache import SnapshotStore
from entrel.config import Settings, load_settings
from entrel.service.process import serving
from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["flood", "fuzz", "main"]

_METHOD = "/entrel.v1.Relevance/ScoreItems"
_PROBE_EVERY_S = 0.05


def _channel(address: str) -> grpc.Channel:
    # Own connection per client, so the probe does not queue behind the flood's.
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


@contextmanager
def _sampling_rss(pid: int, out: list[float]) -> Iterator[None]:
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            out.append(rss_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def cached_request(settings: Settings, address: str, n_items: int = 20) -> pb.ScoreItemsRequest:
    """A request the snapshot answers entirely from cache (query row present, every pair cached)."""
    snap = SnapshotStore(settings.snapshot_root)
    reader = snap.open(snap.current_id() or "")
    stub = pb_grpc.RelevanceStub(_channel(address))
    ids = list(reader.item_rows)[:300]
    for query in reader.queries():
        request = pb.ScoreItemsRequest(query=query, items=[pb.ItemRef(item_id=i) for i in ids], explain=True)
        reply = stub.ScoreItems(request, timeout=30)
        cached = [
            r.item_id
            for r in reply.items
            if r.status == pb.ITEM_STATUS_OK and all(e.source == pb.SCORE_SOURCE_CACHED for e in r.entities)
        ]
        if len(cached) >= n_items:
            return pb.ScoreItemsRequest(query=query, items=[pb.ItemRef(item_id=i) for i in cached[:n_items]])
    raise RuntimeError("no query of the snapshot has enough fully cached items")


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values)
    summary = {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 95, 99)}
    return {"n": len(values), **summary, "max": round(float(a.max()), 2)}


def _timed(call: Callable[[], Any]) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        call()
        code = "OK"
    except grpc.RpcError as exc:
        code = exc.code().name
    return code, (time.perf_counter() - started) * 1000


def _probe(address: str, request: bytes, stop_at: float, results: Any) -> None:
    """Runs in a process of its own, so the flooding clients' Python work cannot delay its calls."""
    stub = pb_grpc.RelevanceStub(_channel(address))
    parsed = pb.ScoreItemsRequest.FromString(request)
    codes: Counter[str] = Counter()
    client_ms: list[float] = []
    server_ms: list[float] = []
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            reply = stub.ScoreItems(parsed, timeout=5)
            codes["OK"] += 1
            server_ms.append(reply.metadata.total_ms)
        except grpc.RpcError as exc:
            codes[exc.code().name] += 1
        client_ms.append((time.perf_counter() - started) * 1000)
        time.sleep(_PROBE_EVERY_S)
    results.put((dict(codes), client_ms, server_ms))


def _flood_requests(rng: random.Random, settings: Settings, count: int) -> list[pb.ScoreItemsRequest]:
    """Requests of inline items at the largest sizes, built before the flood (building one takes the
    client's GIL for tens of ms); each send gets a fresh query and description words, so no text repeats."""
    return [
        pb.ScoreItemsRequest(query="red chair", items=[pb.ItemRef(inline=i) for i in largest_inline_items(rng, settings.server)])
        for _ in range(count)
    ]


def flood(settings: Settings, address: str, pid: int, seconds: float, clients: int, seed: int = 0) -> dict[str, Any]:
    """`clients` inline floods and one cached probe (in its own process) for `seconds`; RSS, codes, latencies."""
    probe_request = cached_request(settings, address)
    deadline_s = settings.server.default_deadline_ms / 1000
    rng = random.Random(seed)
    templates = _flood_requests(rng, settings, 2 * clients)
    lock = threading.Lock()
    codes: Counter[str] = Counter()
    flood_ms: list[float] = []

    def flooder(c: int) -> None:
        own = random.Random(seed * 1000 + c)
        stub = pb_grpc.RelevanceStub(_channel(address))
        for k in range(c, 10**9, clients):
            if time.monotonic() >= stop_at:
                break
            request = pb.ScoreItemsRequest()
            request.CopyFrom(templates[k % len(templates)])
            request.query = f"red chair {own.getrandbits(24)}"
            for item in request.items:  # novel text, same sizes (titles may be at their normalised limit)
                description = item.inline.description
                item.inline.description = f"{own.getrandbits(32):x} {description}"[: len(description)]
            code, ms = _timed(functools.partial(stub.ScoreItems, request, timeout=deadline_s))
            with lock:
                codes[code] += 1
                flood_ms.append(ms)

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop_at = time.monotonic() + seconds
    prober = context.Process(target=_probe, args=(address, probe_request.SerializeToString(), stop_at, results))
    rss: list[float] = []
    before = rss_mb(pid)
    prober.start()
    with _sampling_rss(pid, rss):
        threads = [threading.Thread(target=flooder, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    probe_codes, probe_ms, probe_server_ms = results.get(timeout=60)
    prober.join()
    time.sleep(2)
    return {
        "clients": clients,
        "seconds": seconds,
        "inline_items_per_request": len(templates[0].items),
        "rss_mb": {"before": round(before, 1), "peak": round(max(rss, default=before), 1), "after": round(rss_mb(pid), 1)},
        "rss_growth_mb": round(max(rss, default=before) - before, 1),
        "flood_codes": dict(codes),
        "flood_ms": _percentiles(flood_ms),
        "flood_over_deadline": sum(ms > deadline_s * 1000 + 100 for ms in flood_ms),
        "probe_codes": probe_codes,
        "probe_ms": _percentiles(probe_ms),
        "probe_server_ms": _percentiles(probe_server_ms),
    }


def fuzz(address: str, bodies: int, seed: int = 0, threads: int = 8) -> dict[str, int]:
    """Status codes of `bodies` hostile request bodies sent raw."""
    rng = random.Random(seed)
    valid = pb.ScoreItemsRequest(
        query="red leather office chair", items=[pb.ItemRef(item_id="D0001"), pb.ItemRef(inline=pb.InlineItem(title="red chair"))]
    ).SerializeToString()
    payloads = [fuzz_body(rng, valid) for _ in range(bodies)]
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = _channel(address).unary_unary(_METHOD)
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    cursor = iter(range(bodies))

    def worker() -> None:
        for k in cursor:
            code, _ = _timed(functools.partial(call, payloads[k], timeout=10))
            with lock:
                codes[code] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return dict(codes)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("*") if p.is_file()) if path.is_dir() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--fuzz", type=int, default=2000)
    parser.add_argument("--address", help="a running server (else one is started)")
    parser.add_argument("--pid", type=int, help="its process id, for RSS")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, args.overrides)
    config_args = (["--config", args.config] if args.config else []) + [f"--set={o}" for o in args.overrides]
    misses_before = _dir_bytes(settings.miss_log_dir)
    log_path = Path(settings.data_dir) / "logs" / "server-flood.log"
    started = serving(config_args, log_path) if args.address is None else nullcontext(None)
    with started as served:
        address, pid = (args.address, args.pid) if served is None else (served.address, served.pid)
        report: dict[str, Any] = {"flood": flood(settings, address, pid, args.seconds, args.clients)}
        report["fuzz_codes"] = fuzz(address, args.fuzz)
        report["load_average"] = os.getloadavg()
    report["miss_log_bytes_written"] = _dir_bytes(settings.miss_log_dir) - misses_before
    if served is not None:
        report["server_log_bytes"] = log_path.stat().st_size
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
