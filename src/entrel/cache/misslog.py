"""Log of live misses, so the next nightly run precomputes what traffic asked for.

The server logs each request that needed live scoring (and was not shed).
Records go through a bounded queue to a background thread, so a slow disk
never slows a request; when the queue is full the record is dropped and
counted. The thread merges repeats within a window and writes one JSON line
per distinct record: ``{"q": normalised query, "e": [[type, text], ...],
"cached": bool, "n": count}``. Files rotate at a size cap, and past the
total cap the oldest files are deleted (counted): a flood of misses costs a
bounded amount of disk and, read back, a bounded nightly.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from entrel.catalog.entity import Entity

__all__ = ["MissLogWriter", "MissSummary", "read_misses"]

log = logging.getLogger(__name__)

_Record = tuple[str, tuple[tuple[str, str], ...], bool]
_TICK = object()


def _no_count(reason: str, amount: int) -> None:
    """Default drop counter: counted nowhere."""


class MissLogWriter:
    """Writes merged miss records from a background thread into `<dir>/misses-<day>-<pid>-<seq>.jsonl`.

    `on_drop(reason, amount)` counts what is lost: records when the queue is
    full ("queue_full") and bytes of old files deleted for the total cap
    ("deleted_bytes").
    """

    def __init__(
        self,
        directory: Path,
        window_s: float = 60.0,
        file_bytes: int = 16 << 20,
        total_bytes: int = 256 << 20,
        on_drop: Callable[[str, int], None] = _no_count,
        max_queue: int = 10000,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._window = window_s
        self._file_bytes = file_bytes
        self._total_bytes = total_bytes
        self._on_drop = on_drop
        # Distinct records held per window; more flush the window early.
        self._max_pending = max_queue
        self._queue: queue.Queue[_Record | object | None] = queue.Queue(maxsize=max_queue)
        self._sequence = 0
        self._thread = threading.Thread(target=self._run, name="entrel-misslog", daemon=True)
        self._thread.start()

    def record(self, normalized_query: str, entities: Sequence[Entity], query_cached: bool) -> None:
        try:
            self._queue.put_nowait((normalized_query, tuple((e.type.value, e.text) for e in entities), query_cached))
        except queue.Full:
            self._on_drop("queue_full", 1)

    def flush(self) -> None:
        """Write what is held now instead of at the end of the window."""
        self._queue.put(_TICK)

    def _run(self) -> None:
        pending: Counter[_Record] = Counter()
        due = time.monotonic() + self._window
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, due - time.monotonic()))
            except queue.Empty:
                item = _TICK
            if item is None:
                self._write(pending)
                return
            if item is not _TICK:
                pending[item] += 1  # type: ignore[index]
            if item is _TICK or len(pending) >= self._max_pending or time.monotonic() >= due:
                self._write(pending)
                pending = Counter()
                due = time.monotonic() + self._window

    def _path(self) -> Path:
        day = time.strftime("%Y%m%d", time.gmtime())
        return self.directory / f"misses-{day}-{os.getpid()}-{self._sequence:04d}.jsonl"

    def _write(self, pending: Counter[_Record]) -> None:
        lines = [
            (json.dumps({"q": q, "e": [list(e) for e in entities], "cached": cached, "n": n}, ensure_ascii=False) + "\n").encode()
            for (q, entities, cached), n in pending.items()
        ]
        try:
            for chunk in self._chunks(lines):
                path = self._path()
                if path.exists() and path.stat().st_size + len(chunk) > self._file_bytes:
                    self._sequence += 1
                    path = self._path()
                self._make_room(len(chunk), keep=path)
                with open(path, "ab") as f:
                    f.write(chunk)
        except OSError:
            log.exception("miss log write failed", extra={"records": len(lines)})

    def _chunks(self, lines: list[bytes]) -> list[bytes]:
        """The newest `lines` that fit the total cap, grouped into pieces that each fit one file."""
        kept: list[bytes] = []
        size = 0
        for line in reversed(lines):
            if len(line) > self._file_bytes or size + len(line) > self._total_bytes:
                self._on_drop("deleted_bytes", len(line))
                continue
            kept.append(line)
            size += len(line)
        chunks: list[bytes] = []
        for line in reversed(kept):
            if chunks and len(chunks[-1]) + len(line) <= self._file_bytes:
                chunks[-1] += line
            else:
                chunks.append(line)
        return chunks

    def _make_room(self, incoming: int, keep: Path) -> None:
        """Delete the oldest files until `incoming` more bytes fit under the total cap."""
        files = sorted(self.directory.glob("misses-*.jsonl"), key=lambda p: p.stat().st_mtime)
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values()) + incoming
        for old in files:
            if total <= self._total_bytes:
                break
            if old == keep:
                continue
            old.unlink(missing_ok=True)
            total -= sizes[old]
            self._on_drop("deleted_bytes", sizes[old])

    def close(self) -> None:
        """Write what is held and stop."""
        self._queue.put(None)
        self._thread.join(timeout=10)


class MissSummary:
    """Counts over the miss log: queries, and (query, entity) pairs."""

    def __init__(self) -> None:
        self.queries: Counter[str] = Counter()
        self.pairs: dict[str, Counter[Entity]] = {}

    def add(self, query: str, entities: Iterable[Entity], count: int = 1) -> None:
        self.queries[query] += count
        pairs = self.pairs.setdefault(query, Counter())
        for entity in entities:
            pairs[entity] += count

    def top(self, max_queries: int) -> MissSummary:
        """Only the `max_queries` most missed queries (ties: alphabetical, for reproducible runs)."""
        kept = MissSummary()
        for query, count in sorted(self.queries.items(), key=lambda qc: (-qc[1], qc[0]))[:max_queries]:
            kept.queries[query] = count
            kept.pairs[query] = self.pairs[query]
        return kept


def read_misses(directory: Path, max_age_days: float, max_queries: int) -> MissSummary:
    """Summarise miss files younger than `max_age_days`, keeping the `max_queries` most missed
    queries; unreadable lines are skipped and logged."""
    summary = MissSummary()
    directory = Path(directory)
    if not directory.is_dir():
        return summary
    oldest = time.time() - max_age_days * 86400
    bad = 0
    for path in sorted(directory.glob("misses-*.jsonl")):
        if path.stat().st_mtime < oldest:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                    count = int(record.get("n", 1))
                    if count < 1:
                        raise ValueError("count below 1")
                    summary.add(record["q"], (Entity.of(t, x) for t, x in record["e"]), count)
                except (ValueError, KeyError, TypeError, AttributeError):
                    bad += 1
    if bad:
        log.warning("unreadable miss log lines skipped", extra={"lines": bad})
    return summary.top(max_queries)
