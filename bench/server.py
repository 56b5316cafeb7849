"""`entrel serve` as a subprocess for the length of a `with` block.

A separate process, as in production: the load generator's Python work
(building, sending, parsing) does not queue on the server's GIL, and the
server pays for its own serialisation. Both still share this machine's
cores, which the report states.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from entrel.service.client import RelevanceClient
from offline.demo import _await_serving, _free_port, _start_server

__all__ = ["Served", "serving"]

_STOP_TIMEOUT_S = 60


@dataclass(frozen=True)
class Served:
    address: str
    # From process start to the health service reporting SERVING.
    startup_s: float


@contextmanager
def serving(config_args: Sequence[str], log_path: Path) -> Iterator[Served]:
    """Start `entrel [config_args] serve` on a free loopback port; SIGTERM it on exit (which flushes its miss log)."""
    port = _free_port()
    process = _start_server(config_args, port, log_path)
    try:
        with RelevanceClient(f"127.0.0.1:{port}") as client:
            startup_s = _await_serving(client, process, log_path)
        yield Served(f"127.0.0.1:{port}", startup_s)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=_STOP_TIMEOUT_S)
