"""`entrel ...`: command-line entry points. Each command parses, then calls a job or client."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from entrel.config import ConfigError, Settings, load_settings
from entrel.errors import EntrelError
from entrel.logs import configure_logging

if TYPE_CHECKING:  # imported lazily below: grpc is slow to load for commands that do not need it
    from entrel.bench.run import Options
    from entrel.service.channel import ClientSecurity
    from entrel.v1 import admin_pb2

__all__ = ["main"]

log = logging.getLogger("entrel")


def _address(settings: Settings, given: str | None) -> str:
    return given or f"{settings.server.host}:{settings.server.port}"


def _admin_address(settings: Settings, given: str | None) -> str:
    return given or settings.server.admin_address or _address(settings, None)


# Client flags -> [client] settings they override.
_CLIENT_FLAGS = {
    "tls": "tls",
    "ca_file": "ca_file",
    "cert_file": "cert_file",
    "key_file": "key_file",
    "server_name": "server_name",
    "token_file": "token_file",
}


def _security(settings: Settings, args: argparse.Namespace) -> ClientSecurity:
    """How this command connects: [client] settings, overridden by its --tls/--ca-file/... flags."""
    from entrel.service.channel import ClientSecurity

    given = {f"client.{key}": getattr(args, flag) for flag, key in _CLIENT_FLAGS.items() if getattr(args, flag)}
    return ClientSecurity.from_settings((settings.replace(**given) if given else settings).client)


def cmd_nightly(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.offline import nightly

    report = nightly.run(settings, progress=not args.no_progress)
    print(report.to_json())
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.service.server import RelevanceServer

    RelevanceServer(settings).start().wait()
    return 0


def cmd_score(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.render import render_ranking
    from entrel.service.client import RelevanceClient

    with RelevanceClient(_address(settings, args.address), security=_security(settings, args)) as client:
        response = client.score(args.query, args.item_ids, explain=args.explain)
    print(render_ranking(args.query, response))
    return 0


def cmd_explain(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.render import render_explanation
    from entrel.service.client import RelevanceClient

    with RelevanceClient(_address(settings, args.address), security=_security(settings, args)) as client:
        response = client.score(args.query, args.item_ids, explain=True)
    print(render_explanation(args.query, response))
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    from entrel.service.client import AdminClient

    with AdminClient(_admin_address(settings, args.address), security=_security(settings, args)) as admin:
        status = admin.status()
    if args.json:
        print(json.dumps(MessageToDict(status, always_print_fields_with_no_presence=True), indent=2))
        return 0
    print(f"snapshot     {status.snapshot_id or '(none: every pair live)'}")
    if status.promoted_snapshot_id != status.snapshot_id:
        print(f"promoted     {status.promoted_snapshot_id or '(none)'} (not served)")
    print(f"model        {status.model_fingerprint}")
    print(f"serving      {'yes' if status.serving else 'no'}")
    print(f"queue depth  {status.queue_depth} live pairs")
    lookups = status.cache_hits + status.cache_misses
    print(f"hit rate     {status.hit_rate:.1%} of {lookups} lookups over {status.requests} calls")
    print(f"uptime       {status.uptime_s:.0f} s")
    return 0


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.service.client import AdminClient

    with AdminClient(_admin_address(settings, args.address), security=_security(settings, args)) as admin:
        change = admin.reload() if args.action == "reload" else admin.rollback()
    if change.changed:
        print(f"serving {change.snapshot_id} (was {change.previous_snapshot_id or 'none'})")
    else:
        print(f"still serving {change.snapshot_id or 'no snapshot'}")
    if change.promoted_snapshot_id != change.snapshot_id:
        print(f"promoted {change.promoted_snapshot_id or 'nothing'} is not served: see the server log", file=sys.stderr)
        return 1
    return 0


def _override_line(o: admin_pb2.Override) -> str:
    what = (
        f"{o.entity_type.replace('_', ' ')}: {o.entity_text}" if o.entity_text else f"{o.entity_type.replace('_', ' ')} (ignored)"
    )
    score = "neutral" if o.ignore_type else f"{o.score:.3f}"
    return f"{o.query!r:24} {what:32} {score:>7}  {o.reason}  [{o.principal}, {o.updated_at}]"


def cmd_override(settings: Settings, args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    from entrel.service.client import AdminClient

    with AdminClient(_admin_address(settings, args.address), security=_security(settings, args)) as admin:
        if args.action == "ls":
            listed = admin.list_overrides(args.query or "")
            if args.json:
                print(json.dumps(MessageToDict(listed, always_print_fields_with_no_presence=True), indent=2))
            for o in [] if args.json else listed.overrides:
                print(_override_line(o))
            if not args.json:
                print(f"{len(listed.overrides)} override(s), store version {listed.version}")
            return 0
        if args.action == "set":
            if (args.score is None) == (not args.ignore):
                raise EntrelError("entrel override set: give --score S (an entity) or --ignore (its whole type)")
            change = admin.set_override(args.query, args.type, args.text or "", args.score, args.reason)
        else:
            change = admin.delete_override(args.query, args.type, args.text or "", args.reason)
    if change.HasField("before"):
        print(f"was  {_override_line(change.before)}")
    print(f"now  {_override_line(change.after)}" if change.HasField("after") else "now  (none)")
    if change.note:
        print(f"note: {change.note}", file=sys.stderr)
    return 0


def cmd_entities(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.offline.inspection import item_entities

    for line in item_entities(settings, args.item_ids, from_catalog=args.from_catalog):
        print(line)
    return 0


def cmd_snapshots(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.cache import SnapshotStore

    store = SnapshotStore(settings.snapshot_root)
    if args.action == "rollback":
        print(f"promoted {store.rollback()}")
        return 0
    current = store.current_id()
    for snapshot_id in store.list_ids():
        reader = store.open(snapshot_id, verify=args.action == "verify")
        marker = "*" if snapshot_id == current else " "
        m = reader.manifest
        print(f"{marker} {snapshot_id}  model {m.model_fingerprint}  {json.dumps(m.counts)}  {m.created_at}")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    if args.encoder and not args.esci:
        from entrel.offline import train

        directory, fingerprint = train.run_encoder(settings, output=args.output, progress=not args.no_progress)
        print(f"encoder {directory} fingerprint {fingerprint}; serve it with: --set similarity.encoder={directory}")
        return 0
    if args.esci:
        from entrel.offline import evaluate
        from entrel.offline.methods.entity_model import esci_model, serving_settings

        ctx = evaluate.context(settings, args.data, quick=False, retrain=args.retrain, progress=not args.no_progress)
        directory, info, reused = esci_model(ctx)
        overrides = " ".join(f"--set {k}={v}" for k, v in info["serve_overrides"].items())
        serving = " ".join(f"--set {k}={v}" for k, v in serving_settings(ctx, 0).items())
        print(
            f"model {directory} fingerprint {info['fingerprint']} {'reused' if reused else 'trained'} "
            f"(recipe {info['recipe']['chosen']}); serve it with: {overrides} {serving}"
        )
        return 0
    from entrel.offline import train

    report = train.run(settings, output=args.output, progress=not args.no_progress)
    print(f"model {report.model_dir} fingerprint {report.fingerprint} trained in {report.seconds:.0f} s")
    return 0


def _config_args(args: argparse.Namespace) -> list[str]:
    """This command line's --config/--set flags, for the server subprocess a command starts."""
    return (["--config", args.config] if args.config else []) + [f"--set={o}" for o in args.overrides]


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.offline import evaluate

    names = [n.strip() for n in args.methods.split(",") if n.strip()] if args.methods else None
    evaluate.run(
        settings,
        args.data,
        args.out,
        args.quick,
        method_names=names,
        retrain=args.retrain,
        progress=not args.no_progress,
        config_args=_config_args(args),
        dataset=args.dataset,
        data_spec=args.data_spec,
        compare=evaluate.parse_compare(args.compare) if args.compare else None,
    )
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.offline import demo

    return demo.run(settings, _config_args(args))


# The parts of `entrel bench`, in the order it runs them.
BENCH_PARTS = ("precompute", "naive", "online", "batch", "overrides", "traffic")


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from entrel.bench.run import run

    run(settings, bench_options(args))
    return 0


def bench_options(args: argparse.Namespace) -> Options:
    """The benchmark's options from `entrel bench` arguments (--only PART skips every other part)."""
    from pathlib import Path

    from entrel.bench.run import Options

    skip = frozenset(args.skip)
    if args.only:
        skip |= frozenset(BENCH_PARTS) - frozenset(args.only)
    return Options(
        out=Path(args.out),
        data=args.data,
        data_dir=args.data_dir,
        quick=args.quick,
        requests=args.requests,
        duration_s=args.duration_s,
        fresh=args.fresh,
        skip=skip,
        config_args=tuple(_config_args(args)),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="entrel", description=__doc__)
    parser.add_argument("--config", help="TOML settings file (default: $ENTREL_CONFIG, else built-in defaults)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. logic.tnorm=min",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[Settings, argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("nightly", cmd_nightly, "extract entities, mine queries, precompute scores, publish a new snapshot")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add("serve", cmd_serve, "run the gRPC server until SIGTERM")

    def connects(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument("--address", help=f"server host:port (default: {default})")
        p.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates (client.tls)")
        p.add_argument("--ca-file", help="PEM CA that signed the server's certificate; implies TLS (client.ca_file)")
        p.add_argument("--cert-file", help="PEM client certificate, for mutual TLS (client.cert_file)")
        p.add_argument("--key-file", help="its private key (client.key_file)")
        p.add_argument("--server-name", help="name to check the server's certificate against (client.server_name)")
        p.add_argument("--token-file", help="file holding the bearer token (client.token_file; else $ENTREL_TOKEN)")

    for name, handler, text in (
        ("score", cmd_score, "rank items for a query by calling the server"),
        ("explain", cmd_explain, "show why items scored as they did, entity by entity"),
    ):
        p = add(name, handler, text)
        p.add_argument("query")
        p.add_argument("item_ids", nargs="+", metavar="ITEM_ID")
        connects(p, "server.host:server.port")
        if name == "score":
            p.add_argument("--explain", action="store_true", help="also print each item's entities")
    p = add("status", cmd_status, "ask a running server what it serves: snapshot, model, queue, hit rate, uptime")
    connects(p, "server.admin_address, else server.host:server.port")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p = add("admin", cmd_admin, "reload the promoted snapshot now, or roll back to the previous one (admin token)")
    p.add_argument("action", choices=("reload", "rollback"))
    connects(p, "server.admin_address, else server.host:server.port")
    p = add("override", cmd_override, "set, remove or list operators' overrides of (query, entity) scores")
    actions = p.add_subparsers(dest="action", required=True)
    o = actions.add_parser("set", help="set an entity's score for a query ('*': every query), or ignore a type (admin token)")
    o.add_argument("query", help="the query as clients send it, or '*' for every query")
    o.add_argument("type", help="entity type: product_type, brand, color, material, size, audience, style, phrase")
    o.add_argument("text", nargs="?", help="the entity's text (leave out with --ignore)")
    o.add_argument("--score", type=float, help="the score, within [0, 1]: 1 asked for, 0.5 neutral, 0 contradicts")
    o.add_argument("--ignore", action="store_true", help="ignore every entity of the type for the query (neutral)")
    o.add_argument("--reason", required=True, help="why (shown in explanations, kept in the audit log)")
    connects(o, "server.admin_address, else server.host:server.port")
    o = actions.add_parser("rm", help="remove an override (admin token)")
    o.add_argument("query")
    o.add_argument("type")
    o.add_argument("text", nargs="?", help="the entity's text (leave out for an ignored type)")
    o.add_argument("--reason", required=True, help="why (kept in the audit log)")
    connects(o, "server.admin_address, else server.host:server.port")
    o = actions.add_parser("ls", help="list the overrides in force (read-only token)")
    o.add_argument("--query", help="only this query's overrides and those for every query")
    o.add_argument("--json", action="store_true", help="print them as JSON")
    connects(o, "server.admin_address, else server.host:server.port")
    p = add("entities", cmd_entities, "show the entities of catalog items")
    p.add_argument("item_ids", nargs="+", metavar="ITEM_ID")
    p.add_argument(
        "--from-catalog", action="store_true", help="extract from the catalog now instead of reading the served snapshot"
    )
    p = add("train", cmd_train, "fine-tune the query-entity cross-encoder on the catalog and graded labels")
    p.add_argument("--output", help="model directory to write (default: model.name_or_path)")
    p.add_argument(
        "--esci",
        action="store_true",
        help="train the ESCI entity model instead (recipe and weights chosen by k-fold CV) into var/models/entrel-esci",
    )
    p.add_argument("--data", help="with --esci: the ESCI folder (default: $ENTREL_ESCI_DIR, else ../shared/data/esci-us)")
    p.add_argument("--retrain", action="store_true", help="with --esci: retrain even when a matching model is saved")
    p.add_argument(
        "--encoder",
        action="store_true",
        help="fine-tune the similarity term's bi-encoder (similarity.encoder) on the labels instead; "
        "--output default <data_dir>/models/similarity-encoder",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p = add("eval", cmd_eval, "evaluate the ranking methods on held-out queries (ESCI, or --dataset); print tables, write JSON")
    p.add_argument(
        "--dataset",
        default="esci-us",
        help="esci-us (default), or a catalog described in offline/dataset_specs/ (chorus-icecat: cross-domain)",
    )
    p.add_argument("--data-spec", help="a dataset description TOML file instead of --dataset")
    p.add_argument(
        "--data",
        help="the dataset's folder (ESCI default: $ENTREL_ESCI_DIR, else ../shared/data/esci-us; others: their description's)",
    )
    p.add_argument("--out", default="results.json", help="JSON results file (default: results.json)")
    p.add_argument("--quick", action="store_true", help="a few minutes on CPU: fewer queries and epochs, no slow models")
    p.add_argument("--methods", help="comma-separated methods to run (default: all; with --quick, the quick ones)")
    p.add_argument(
        "--compare",
        help="paired bootstrap comparisons A:B,... of nDCG@10 (default: every method vs bm25, biencoder_minilm, distillation)",
    )
    p.add_argument("--retrain", action="store_true", help="retrain models a method would reuse from var/models")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add("demo", cmd_demo, "train if needed, run the nightly job, serve, query with explanations, stop")
    p = add("bench", cmd_bench, "benchmark entrel against the naive cross-encoder: latency, throughput, precompute, hit rates")
    p.add_argument("--out", default="bench.json", help="JSON file for every figure (default: bench.json)")
    p.add_argument(
        "--data",
        choices=("demo", "esci"),
        default="demo",
        help="demo: the configured catalog and query log; esci: the ESCI subset",
    )
    p.add_argument("--data-dir", help="the benchmark's own data dir (default: var/bench, or var/bench-esci)")
    p.add_argument("--fresh", action="store_true", help="rebuild the snapshot even when one exists")
    p.add_argument("--quick", action="store_true", help="short counts and fewer load levels: a smoke run")
    p.add_argument("--requests", type=int, help="at most this many requests per scenario")
    p.add_argument("--duration-s", type=float, help="at most this many seconds per scenario")
    p.add_argument("--skip", action="append", default=[], choices=BENCH_PARTS, help="leave a part out (repeatable)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        choices=BENCH_PARTS,
        help="run only this part (repeatable), e.g. --only batch: ScoreBatch against separate ScoreItems calls",
    )
    p = add("snapshots", cmd_snapshots, "list, verify or roll back cache snapshots")
    p.add_argument("action", nargs="?", choices=("list", "verify", "rollback"), default="list")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors a user can fix print one line and exit 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config, args.overrides)
    except ConfigError as exc:
        print(f"entrel: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    import grpc

    try:
        return args.handler(settings, args)
    except EntrelError as exc:
        print(f"entrel {args.command}: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"entrel {args.command}: server said {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
