"""Log of live misses, so the next nightly run precomputes what traffic asked for.

The server appends one JSON line per request that needed live scoring:
``{"q": normalised query, "e": [[type, text], ...], "cached": bool}``.
Writes go through a bounded queue to a background thread: a slow disk
never slows a request, and when the queue is full the record is dropped and
counted. Files rotate daily; the nightly job reads the recent ones.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from entrel.catalog.entity import Entity

__all__ = ["MissLogWriter", "MissSummary", "read_misses"]

log = logging.getLogger(__name__)


class MissLogWriter:
    """Appends miss records from a background thread into `<dir>/misses-<day>-<pid>.jsonl`."""

    def __init__(self, directory: Path, max_queue: int = 10000) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="entrel-misslog", daemon=True)
        self._thread.start()

    def record(self, normalized_query: str, entities: Sequence[Entity], query_cached: bool) -> None:
        line = json.dumps(
            {"q": normalized_query, "e": [[e.type.value, e.text] for e in entities], "cached": query_cached},
            ensure_ascii=False,
        )
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _path(self) -> Path:
        return self.directory / f"misses-{time.strftime('%Y%m%d', time.gmtime())}-{os.getpid()}.jsonl"

    def _run(self) -> None:
        while (line := self._queue.get()) is not None:
            lines = [line]
            while True:  # drain what is queued: one open/write per burst
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                lines.append(more)
            try:
                with open(self._path(), "a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
            except OSError:
                log.exception("miss log write failed", extra={"records": len(lines)})

    def close(self) -> None:
        """Flush what is queued and stop."""
        self._queue.put(None)
        self._thread.join(timeout=10)


class MissSummary:
    """Counts over the miss log: queries, and (query, entity) pairs."""

    def __init__(self) -> None:
        self.queries: Counter[str] = Counter()
        self.pairs: dict[str, Counter[Entity]] = {}

    def add(self, query: str, entities: Iterable[Entity]) -> None:
        self.queries[query] += 1
        self.pairs.setdefault(query, Counter()).update(entities)


def read_misses(directory: Path, max_age_days: float) -> MissSummary:
    """Summarise miss files younger than `max_age_days`; unreadable lines are skipped and logged."""
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
                    summary.add(record["q"], (Entity.of(t, x) for t, x in record["e"]))
                except (ValueError, KeyError, TypeError):
                    bad += 1
    if bad:
        log.warning("unreadable miss log lines skipped", extra={"lines": bad})
    return summary
