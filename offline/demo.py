"""`entrel demo`: the whole product, end to end, on the embedded demo data.

1. a model: reuse the trained one, or fine-tune MiniLM on the demo data (first run);
2. the nightly job into a fresh LMDB snapshot;
3. `entrel serve` as a real subprocess, awaited through the gRPC health service;
4. queries through the client, printed with per-entity explanations;
5. bad requests, to show the errors a caller gets;
6. the cache hit rate of the demo traffic;
7. SIGTERM, and the server's clean exit.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import grpc

from entrel.config import Settings
from entrel.offline import nightly, train
from entrel.offline.mine_queries import read_query_log
from entrel.offline.training.examples import Label, read_labels
from entrel.render import render_explanation, render_ranking
from entrel.scoring import MODEL_INFO_FILE
from entrel.service.client import RelevanceClient
from entrel.service.process import serving
from entrel.v1 import relevance_pb2 as pb

__all__ = ["run"]

# Cached queries from the log, a paraphrase the log never saw (scored
# live), and one whose every candidate contradicts it.
_SHOWN_QUERIES = (
    "red leather office chair",
    "womens running shoes size 8",
    "crimson leather desk seat",
    "yellow office chair",
    # An exclusion: the chairs with a headrest keep 1 - exclusion.penalty of their score.
    "office chair without headrest",
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _ensure_model(settings: Settings) -> None:
    model_dir = Path(settings.model.name_or_path)
    if (model_dir / MODEL_INFO_FILE).is_file():
        _say(f"== model: reusing {model_dir} (delete it to retrain)")
        return
    _say(f"== model: none at {model_dir}; fine-tuning {settings.train.base_model} on the demo data (first run only)")
    report = train.run(settings)
    _say(f"   trained in {report.seconds:.0f} s -> {report.model_dir} (fingerprint {report.fingerprint})")


def _candidates(labels: Sequence[Label]) -> dict[str, list[str]]:
    """The judged items of each labelled query: stand-ins for a ranking service's candidates."""
    items: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        items[label.query].append(label.item_id)
    return items


def _show_queries(client: RelevanceClient, candidates: dict[str, list[str]]) -> None:
    for query in _SHOWN_QUERIES:
        items = candidates.get(query) or candidates["red leather office chair"]
        response = client.score(query, items, explain=True)
        _say(render_ranking(query, response, limit=4))
        worst = min(response.items, key=lambda i: i.score)
        _say("   lowest: " + render_explanation(query, pb.ScoreItemsResponse(items=[worst])).split("\n", 2)[2].strip())
        for item in response.items:
            if item.excluded:
                _say(f"   excluded: {item.item_id} {item.title[:60]!r} names '{item.excluded}': score {item.score:.3f}")
        _say()
    inline = pb.InlineItem(
        item_id="NEW-1",
        title="Corvell Executive Red Leather Office Chair with Headrest",
        brand="Corvell",
        category_path=["Furniture", "Office Chairs"],
    )
    response = client.score("red leather office chair", [inline, "NOT-IN-CATALOG"], explain=True)
    _say("== an item sent inline (not in the snapshot: entities extracted live) and an unknown id")
    _say(render_explanation("red leather office chair", response))
    _say()


def _show_bad_requests(client: RelevanceClient, max_items: int) -> None:
    _say("== bad requests get a clear status, never a crash")
    cases = {
        "empty query": ("   ", ["D0001"]),
        "over-long query": ("chair " * 200, ["D0001"]),
        "too many items": ("chair", ["D0001"] * (max_items + 1)),
    }
    for name, (query, items) in cases.items():
        try:
            client.score(query, items)
            _say(f"   {name}: accepted (unexpected)")
        except grpc.RpcError as exc:
            _say(f"   {name}: {exc.code().name}: {exc.details()}")
    _say()


def _hit_rate(client: RelevanceClient, candidates: dict[str, list[str]], traffic: dict[str, int]) -> tuple[float, int]:
    """Share of (item, entity) scores served from the cache, replaying labelled queries weighted by traffic."""
    hits = lookups = 0
    for query, items in candidates.items():
        meta = client.score(query, items).metadata
        weight = traffic.get(meta.normalized_query, 1)
        hits += weight * meta.cache_hits
        lookups += weight * (meta.cache_hits + meta.cache_misses)
    return (hits / lookups if lookups else 0.0), len(candidates)


def run(settings: Settings, config_args: Sequence[str] = ()) -> int:
    """Run the demo; `config_args` are the CLI's --config/--set flags, passed on to the server."""
    started = time.monotonic()
    _ensure_model(settings)
    _say("== nightly job: extract entities, mine queries, precompute, publish a snapshot")
    report = nightly.run(settings)
    _say(
        f"   snapshot {report.snapshot_id}: {report.counts} in {sum(report.seconds.values()):.0f} s, "
        f"{report.snapshot_bytes / 1e6:.1f} MB, {report.pairs_per_second:.0f} pairs/s"
    )
    log_path = Path(settings.data_dir) / "logs" / "demo-server.log"
    _say(f"== starting `entrel serve` (log: {log_path})")
    with serving(config_args, log_path) as server:
        _say(f"   SERVING on {server.address} after {server.startup_s:.1f} s\n")
        with RelevanceClient(server.address) as client:
            labels = read_labels(settings.train.labels)
            candidates = _candidates(labels)
            _show_queries(client, candidates)
            _show_bad_requests(client, settings.server.max_items)
            rate, n_queries = _hit_rate(client, candidates, read_query_log(settings.nightly.query_log))
            _say(f"== cache hit rate over {n_queries} labelled queries x their judged items, weighted by traffic: {rate:.1%}")
    _say(f"== server stopped on SIGTERM, exit code {server.exit_code}")
    _say(f"== demo finished in {time.monotonic() - started:.0f} s")
    return 0 if server.exit_code == 0 else 1
