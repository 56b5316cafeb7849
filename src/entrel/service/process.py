"""`entrel serve` as a subprocess for the length of a `with` block (demo, benchmark).

A separate process, as in production: a client's Python work does not
queue on the server's GIL. Leaving the block sends SIGTERM, which stops the
server cleanly (in-flight calls finish, the miss log is flushed).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from entrel.errors import EntrelError
from entrel.service.client import RelevanceClient

__all__ = ["ServerProcess", "serving"]

_START_TIMEOUT_S = 180
_STOP_TIMEOUT_S = 60


@dataclass
class ServerProcess:
    address: str
    pid: int
    # From process start to the health service reporting SERVING.
    startup_s: float
    # Set when the block is left: the server's exit code after SIGTERM.
    exit_code: int | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _await_serving(address: str, process: subprocess.Popen[bytes], log_path: Path) -> float:
    started = time.monotonic()
    with RelevanceClient(address) as client:
        while time.monotonic() - started < _START_TIMEOUT_S:
            if process.poll() is not None:
                raise EntrelError(f"the server exited with {process.returncode}; its log:\n{log_path.read_text()[-3000:]}")
            if client.is_serving():
                return time.monotonic() - started
            time.sleep(0.25)
    raise EntrelError(f"the server did not report SERVING within {_START_TIMEOUT_S} s; see {log_path}")


@contextmanager
def serving(config_args: Sequence[str], log_path: Path) -> Iterator[ServerProcess]:
    """Run `entrel [config_args] serve` on a free loopback port until the block ends."""
    port = _free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "entrel.cli", *config_args, "--set", f"server.port={port}", "serve"]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    try:
        served = ServerProcess(address, process.pid, _await_serving(address, process, log_path))
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=_STOP_TIMEOUT_S)
    served.exit_code = code
