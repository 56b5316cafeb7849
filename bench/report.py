"""The benchmark's results as a table, the headline ratios, and the machine they were taken on."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = ["git_state", "machine", "ratios", "render"]

# Where the measured code lives: a checkout's git state says which commit ran (an installed wheel has none).
_CODE = Path(__file__).resolve().parent


def _cpu_model() -> str:
    """The CPU's model name (Linux), else whatever the platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


def machine() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_state() -> dict[str, Any] | None:
    """Commit and whether the working tree had changes: which code was measured."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_CODE, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=_CODE, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _find(rows: Iterable[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items()) and r.get("ok")]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def ratios(online: list[dict[str, Any]], naive: list[dict[str, Any]]) -> dict[str, Any]:
    """Median latency naive / entrel at 100% hits (one client each), throughput entrel / naive at 0%."""
    out: dict[str, Any] = {}
    naive_c1 = _find(naive, concurrency=1)
    entrel_c1 = _find(online, hit_target=1.0, mode="closed", concurrency=1)
    if naive_c1 and entrel_c1:
        out["median_latency_naive_over_entrel_at_100pct"] = _ratio(
            naive_c1[0]["latency_ms"]["p50"], entrel_c1[0]["latency_ms"]["p50"]
        )
    naive_rps = {r["concurrency"]: r["throughput_rps"] for r in _find(naive, mode="closed")}
    for target in (0.0, 1.0):
        entrel_rps = {r["concurrency"]: r["throughput_rps"] for r in _find(online, hit_target=target, mode="closed")}
        if not (entrel_rps and naive_rps):
            continue
        label = f"{target * 100:.0f}pct"
        out[f"throughput_entrel_over_naive_at_{label}_peak"] = _ratio(max(entrel_rps.values()), max(naive_rps.values()))
        out[f"throughput_entrel_over_naive_at_{label}_by_concurrency"] = {
            c: _ratio(entrel_rps[c], naive_rps[c]) for c in sorted(entrel_rps.keys() & naive_rps.keys())
        }
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}" if value in (0, 1) else f"{value:.1%}"


_ONLINE_HEADER = [
    *("system", "hits", "measured", "load", "ok/sent", "p50 ms", "p95 ms", "p99 ms"),
    *("server p50", "req/s", "degraded", "errors"),
]
_PRECOMPUTE_HEADER = ["method", "device", "precision", "pairs/s", "x predict", "max |diff|", "mean |diff|"]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
        for line in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _scenario_row(row: dict[str, Any]) -> list[str]:
    load = f"closed c={row['concurrency']}" if row["mode"] == "closed" else f"open {row['rate_rps']:g}/s"
    target = "-" if row["hit_target"] is None else f"{row['hit_target']:.0%}"
    errors = " ".join(f"{code}:{n}" for code, n in sorted(row["errors"].items())) or "-"
    latency = row["latency_ms"]
    return [
        row["system"],
        target,
        _pct(row["hit_rate"]),
        load,
        f"{row['ok']}/{row['requests']}",
        *(_ms(latency[p]) for p in ("p50", "p95", "p99")),
        _ms(row["server_ms"]["p50"]),
        f"{row['throughput_rps']:.1f}",
        str(row["degraded_requests"]),
        errors,
    ]


def _precompute_row(row: dict[str, Any]) -> list[str]:
    if "error" in row:
        return [row["method"], row["device"], row["precision"], "error", "-", row["error"][:60], "-"]
    return [
        row["method"],
        row["device"],
        row["precision"],
        f"{row['pairs_per_s']:.0f}",
        f"{row['speedup_vs_predict']:.2f}",
        f"{row['max_abs_diff_vs_predict']:.2g}",
        f"{row['mean_abs_diff_vs_predict']:.2g}",
    ]


def _traffic_lines(t: dict[str, Any]) -> list[str]:
    before, after = t["nights"][0]["hit_rate"], t["nights"][1]["hit_rate"]
    lines = [f"misses feed the next night: {t['requests']} requests over {t['distinct_queries']} queries"]
    lines.append(f"  share of requests: {t['traffic_share']}")
    lines += [f"  hit rate {g:<14} before {_pct(before[g]):>6}  after {_pct(after.get(g)):>6}" for g in before]
    return lines


def render(results: dict[str, Any]) -> str:
    """The tables a person reads; every figure is also in the JSON."""
    m, model = results["machine"], results["model"]
    parts = [
        f"entrel bench  {results['timestamp']}  {m['cpu']} ({m['usable_cores']} cores)  torch {m['torch']}  "
        f"model {model['fingerprint']} on {model['device']}  load average before {results['load_average']['before']}"
    ]
    scenarios = [*results.get("online", {}).get("scenarios", []), *results.get("naive", {}).get("scenarios", [])]
    if scenarios:
        parts.append("\nonline, 1 query x 100 items per request; latency on the client, server p50 from total_ms\n")
        parts.append(_table(_ONLINE_HEADER, [_scenario_row(r) for r in scenarios]))
    if results.get("ratios"):
        parts.append("\nratios (same run):")
        parts += [f"  {name}: {value}" for name, value in results["ratios"].items()]
    if "precompute" in results:
        parts.append(f"\noffline precompute, {results['precompute']['pairs']} (query, entity) pairs of the nightly\n")
        parts.append(_table(_PRECOMPUTE_HEADER, [_precompute_row(r) for r in results["precompute"]["rows"]]))
    if "batch" in results:
        b = results["batch"]
        parts.append(
            f"\nScoreBatch of {b['groups']} cached groups vs {b['groups']} ScoreItems calls ({b['rounds']} rounds, "
            f"hit rate {_pct(b['hit_rate'])}, same scores: {b['same_scores_as_separate_calls']}): "
            f"median {_ms(b['score_batch_ms']['p50'])} vs {_ms(b['separate_score_items_ms']['p50'])} ms, "
            f"throughput x{b['throughput_batch_over_separate']}"
        )
    if "overrides" in results:
        o = results["overrides"]
        parts.append(
            f"\ncached engine latency with {o['overrides']:,} overrides vs none ({o['requests']} requests x "
            f"{o['rounds']} rounds, {o['entities_overridden_per_round']} entity slots overridden per round): "
            f"median {o['with_overrides_ms']['p50']:.2f} vs {o['no_overrides_ms']['p50']:.2f} ms, "
            f"ratio {o['median_ratio_with_over_none']}"
        )
    if "overrides_served" in results:
        o = results["overrides_served"]
        parts.append(
            f"cached ScoreItems latency over gRPC with {o['overrides']:,} overrides vs none (two servers, "
            f"{o['requests']} requests x {o['rounds']} rounds): median {o['with_overrides_ms']['p50']:.2f} vs "
            f"{o['no_overrides_ms']['p50']:.2f} ms, ratio {o['median_ratio_with_over_none']}"
        )
    if "traffic" in results:
        parts += ["", *_traffic_lines(results["traffic"])]
    return "\n".join(parts)
