"""The command line: readable output, one-line errors a user can act on, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from entrel.cache import SnapshotStore
from entrel.cli import main
from entrel.service.client import RelevanceClient


def test_missing_model_is_one_clear_line(tmp_path, capsys):
    code = main([f"--set=data_dir={tmp_path}", f"--set=model.name_or_path={tmp_path / 'no-model'}", "nightly", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no-model" in err and "entrel train" in err and "Traceback" not in err


def test_catalog_without_a_required_column_names_it(tmp_path, capsys):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,name\n1,Red chair\n")
    code = main([f"--set=catalog.path={catalog}", "--set=catalog.columns.id=sku", "entities", "1", "--from-catalog"])
    err = capsys.readouterr().err
    assert code == 2 and "no column 'title'" in err and "catalog.columns.title" in err


def test_bad_setting_is_a_configuration_error(capsys):
    assert main(["--set=logic.tnorm=maximum", "snapshots"]) == 2
    assert "logic.tnorm must be one of" in capsys.readouterr().err


def test_entities_command_reads_the_served_snapshot(served_settings, capsys):
    store = SnapshotStore(served_settings.snapshot_root)
    chair = next(iter(store.open(store.current_id()).item_rows))
    assert main([f"--set=data_dir={served_settings.data_dir}", "entities", chair, "NOPE"]) == 0
    out = capsys.readouterr().out
    assert chair in out and "product_type" in out and "NOPE: unknown item" in out


def test_score_and_explain_print_tables(server, capsys):
    chairs = list(server.watcher.current().item_rows)[:3]
    address = f"--address=127.0.0.1:{server.port}"
    assert main(["score", "red leather office chair", *chairs, address, "--explain"]) == 0
    out = capsys.readouterr().out
    assert "  1. " in out and "cached" in out and "snapshot " in out
    assert main(["explain", "red leather office chair", chairs[0], "NOPE", address]) == 0
    out = capsys.readouterr().out
    assert "product_type" in out and "lift" in out
    # An unknown item is not dressed up as a blend of zeros.
    assert "NOPE  score 0.000 = not judged (logic.unjudged_score)  [unknown item]" in out


def test_unreachable_server_is_a_clear_error(capsys):
    assert main(["score", "chair", "D1", "--address=127.0.0.1:1"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_serve_stops_cleanly_on_sigterm(served_settings):
    port = 50000 + os.getpid() % 10000
    command = [
        sys.executable,
        "-m",
        "entrel.cli",
        f"--set=data_dir={served_settings.data_dir}",
        f"--set=model.name_or_path={served_settings.model.name_or_path}",
        f"--set=server.port={port}",
        "serve",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        with RelevanceClient(f"127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 120
            while not client.is_serving():
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert client.score("red leather office chair", ["D0001"]).metadata.snapshot_id
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 15
        assert b"stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_demo_runs_end_to_end_with_a_trained_model(tmp_path, trained_model, small_data, capsys):
    """`entrel demo` (what `make demo` runs): nightly, a served subprocess, explanations, clean SIGTERM."""
    code = main(
        [
            f"--set=data_dir={tmp_path}",
            f"--set=model.name_or_path={trained_model}",
            f"--set=catalog.path={small_data['catalog']}",
            f"--set=nightly.query_log={small_data['query_log']}",
            f"--set=train.labels={small_data['labels']}",
            "demo",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"reusing {trained_model}" in out
    assert "cached" in out and "live" in out and "breaks the match" in out
    assert "INVALID_ARGUMENT" in out and "cache hit rate" in out
    # "office chair without headrest": the chairs with one are marked down, and the demo says so.
    assert "excluded: " in out and "names 'headrest'" in out
    assert "exit code 0" in out
