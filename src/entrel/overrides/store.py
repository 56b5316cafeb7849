"""The durable override store: a small LMDB of its own beside the snapshots, plus an audit log.

Independent of snapshots (never swapped, pruned or rolled back with them),
shared by every replica on the same data folder. Each change bumps a
version counter in the same transaction, so a server learns that anything
changed from one 8-byte read and reloads only then. Every change appends
one JSON line to ``audit.jsonl`` (time, principal, before, after, reason)
inside the write transaction: a change that could not be logged is not
made.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path

import lmdb

from entrel.overrides.model import Override, OverrideKey, utc_now

__all__ = ["AUDIT_FILE", "OverrideStore"]

AUDIT_FILE = "audit.jsonl"
_VERSION = b"version"
# One environment per path per process (LMDB's rule): stores are shared like snapshot readers.
_OPEN: weakref.WeakValueDictionary[Path, OverrideStore] = weakref.WeakValueDictionary()
_OPEN_LOCK = threading.Lock()


class OverrideStore:
    """Overrides by key, with a version counter and an audit log. Thread- and process-safe (LMDB's writer lock)."""

    @classmethod
    def open(cls, path: str | Path, map_size_mb: int = 64) -> OverrideStore:
        """The store at `path` (created if missing); every holder in a process shares it."""
        key = Path(path).resolve()
        with _OPEN_LOCK:
            store = _OPEN.get(key)
            if store is None:
                store = _OPEN[key] = cls(key, map_size_mb)
        return store

    def __init__(self, path: Path, map_size_mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.audit_path = path / AUDIT_FILE
        self._env = lmdb.open(str(path), map_size=map_size_mb << 20, max_dbs=2)
        self._overrides = self._env.open_db(b"overrides")
        self._meta = self._env.open_db(b"meta")

    def version(self) -> int:
        """Changes made so far, in any process: one small read, cheap enough to poll."""
        with self._env.begin(db=self._meta) as txn:
            raw = txn.get(_VERSION)
        return int.from_bytes(raw, "big") if raw else 0

    def entries(self) -> tuple[int, list[Override]]:
        """(version, every override) read in one transaction, so the two agree."""
        with self._env.begin() as txn:
            raw = txn.get(_VERSION, db=self._meta)
            found = [Override.from_json(v.decode("utf-8")) for v in txn.cursor(db=self._overrides).iternext(keys=False)]
        return (int.from_bytes(raw, "big") if raw else 0), found

    def put(self, override: Override) -> Override | None:
        """Store `override` (replacing one with the same key); returns what it replaced."""
        with self._env.begin(write=True) as txn:
            return self._put(txn, override)

    def put_all(self, overrides: Iterable[Override]) -> int:
        """Store many overrides in one transaction (one disk sync: an import, a benchmark); returns how many."""
        count = 0
        with self._env.begin(write=True) as txn:
            for override in overrides:
                self._put(txn, override)
                count += 1
        return count

    def _put(self, txn: lmdb.Transaction, override: Override) -> Override | None:
        raw = txn.get(override.key.to_bytes(), db=self._overrides)
        before = None if raw is None else Override.from_json(bytes(raw).decode("utf-8"))
        txn.put(override.key.to_bytes(), override.to_json().encode("utf-8"), db=self._overrides)
        self._changed(txn, override.principal, before, override, override.reason)
        return before

    def delete(self, key: OverrideKey, principal: str, reason: str) -> Override | None:
        """Remove the override at `key`; returns it, or None (nothing written) when there was none."""
        with self._env.begin(write=True) as txn:
            raw = txn.pop(key.to_bytes(), db=self._overrides)
            if raw is None:
                return None
            before = Override.from_json(raw.decode("utf-8"))
            self._changed(txn, principal, before, None, reason)
        return before

    def _changed(
        self, txn: lmdb.Transaction, principal: str, before: Override | None, after: Override | None, reason: str
    ) -> None:
        """Bump the version and log the change, inside the writing transaction (a failed log line aborts it)."""
        raw = txn.get(_VERSION, db=self._meta)
        txn.put(_VERSION, ((int.from_bytes(raw, "big") if raw else 0) + 1).to_bytes(8, "big"), db=self._meta)
        line = {
            "time": utc_now(),
            "principal": principal,
            "before": json.loads(before.to_json()) if before else None,
            "after": json.loads(after.to_json()) if after else None,
            "reason": reason,
        }
        with self.audit_path.open("a", encoding="utf-8") as audit:
            audit.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")

    def audit(self) -> list[dict[str, object]]:
        """Every audit record, oldest first."""
        if not self.audit_path.is_file():
            return []
        return [json.loads(line) for line in self.audit_path.read_text(encoding="utf-8").splitlines() if line]
