"""Load generators: closed loop (C clients back to back) and open loop (Poisson arrivals).

Both are bounded by a request count and a time limit. The open loop
measures latency from each request's *scheduled* arrival, not from when
the generator got round to sending it, so a slow server cannot hide its
queueing by slowing the generator down (coordinated omission); how late
the generator was is reported as the send lag.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
import time
from collections.abc import Callable

import numpy as np

from entrel.bench.stats import Reply, Sample

__all__ = ["closed_loop", "open_loop"]

# Index of the request to send -> its reply (blocking).
Call = Callable[[int], Reply]
# Index, then a callback for the reply: starts the request and returns at once.
Send = Callable[[int, Callable[[Reply], None]], None]

# How long the open loop waits for stragglers after its last arrival.
_DRAIN_S = 30.0


def closed_loop(call: Call, concurrency: int, max_requests: int, max_seconds: float) -> tuple[list[Sample], float]:
    """`concurrency` clients, each sending its next request when the previous one answers."""
    samples: list[Sample] = []
    lock = threading.Lock()
    numbers = itertools.count()  # next() on it is atomic: each index goes to one client
    started = time.perf_counter()
    stop_at = started + max_seconds

    def client() -> None:
        while (i := next(numbers)) < max_requests and time.perf_counter() < stop_at:
            sent = time.perf_counter()
            reply = call(i)
            sample = Sample(i, reply, (time.perf_counter() - sent) * 1000)
            with lock:
                samples.append(sample)

    threads = [threading.Thread(target=client, name=f"bench-client-{c}") for c in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples, time.perf_counter() - started


def open_loop(send: Send, rate: float, max_requests: int, max_seconds: float, seed: int = 0) -> tuple[list[Sample], float]:
    """Requests arriving as a Poisson process of `rate` per second, whatever the answers do."""
    n = max(1, min(max_requests, math.ceil(rate * max_seconds)))
    arrivals = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))
    samples: list[Sample] = []
    lock = threading.Condition()
    started = time.perf_counter()

    def done(index: int, scheduled: float, lag_ms: float, reply: Reply) -> None:
        sample = Sample(index, reply, (time.perf_counter() - scheduled) * 1000, lag_ms)
        with lock:
            samples.append(sample)
            lock.notify()

    for i, offset in enumerate(arrivals):
        scheduled = started + float(offset)
        if (wait := scheduled - time.perf_counter()) > 0:
            time.sleep(wait)
        lag_ms = max(0.0, (time.perf_counter() - scheduled) * 1000)
        send(i, functools.partial(done, i, scheduled, lag_ms))
    with lock:
        lock.wait_for(lambda: len(samples) == n, timeout=_DRAIN_S)
        answered = list(samples)
    return answered, time.perf_counter() - started
