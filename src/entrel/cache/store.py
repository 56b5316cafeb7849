"""The folder of snapshots and the pointer to the one being served.

::

    <root>/
      CURRENT                 id of the promoted snapshot (replaced atomically)
      HISTORY                 ids promoted so far, one per line (for rollback)
      <snapshot id>/          immutable LMDB environment + manifest.json
      .staging-<id>/          a snapshot being written (ignored, pruned later)

A nightly run writes into a staging folder, renames it into place,
verifies it and only then swaps CURRENT. A crash before the swap leaves
CURRENT, and so the served snapshot, untouched.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from entrel.cache.snapshot import SnapshotError, SnapshotReader, SnapshotWriter

__all__ = ["SnapshotStore"]

log = logging.getLogger(__name__)

_STAGING = ".staging-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class SnapshotStore:
    """Creates, promotes, lists, rolls back and prunes snapshots under `root`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def pointer(self) -> Path:
        return self.root / "CURRENT"

    @contextmanager
    def writing(self, map_size_mb: int = 4096) -> Iterator[SnapshotWriter]:
        """A writer into a fresh staging folder, named by UTC time (ids sort by age).

        The block ends with ``writer.finish(manifest)``; the snapshot is then
        published: moved into place under its id, not yet served. When the
        block raises, or ends unfinished, the writer is aborted and nothing is
        published; the staging folder stays until the next run removes it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        snapshot_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
        writer = SnapshotWriter(self.root / f"{_STAGING}{snapshot_id}", snapshot_id, map_size_mb=map_size_mb)
        try:
            yield writer
            if writer.manifest is None:
                raise SnapshotError(f"snapshot {snapshot_id} was not finished: call writer.finish(manifest) in the block")
        except BaseException:
            writer.abort()
            raise
        os.replace(writer.path, self.path_of(snapshot_id))
        _fsync_dir(self.root)

    def path_of(self, snapshot_id: str) -> Path:
        return self.root / snapshot_id

    def current_id(self) -> str | None:
        """The promoted snapshot's id, or None when nothing was ever promoted."""
        try:
            text = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def list_ids(self) -> list[str]:
        """Published snapshot ids, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def open(self, snapshot_id: str, verify: bool = False) -> SnapshotReader:
        """The (process-wide shared) reader of a snapshot, fully verified when asked."""
        reader = SnapshotReader.open(self.path_of(snapshot_id))
        if verify:
            reader.verify()
        return reader

    def promote(self, snapshot_id: str) -> None:
        """Point CURRENT at `snapshot_id` (atomic rename); record it in HISTORY."""
        if not (self.path_of(snapshot_id) / "data.mdb").is_file():
            raise SnapshotError(f"cannot promote {snapshot_id}: no such snapshot under {self.root}")
        _write_atomically(self.pointer, snapshot_id + "\n")
        with open(self.root / "HISTORY", "a", encoding="utf-8") as f:
            f.write(snapshot_id + "\n")
        log.info("snapshot promoted", extra={"snapshot_id": snapshot_id})

    def rollback(self) -> str:
        """Promote the last previously promoted snapshot that still exists and verifies."""
        current = self.current_id()
        try:
            history = (self.root / "HISTORY").read_text(encoding="utf-8").split()
        except FileNotFoundError:
            history = []
        for candidate in reversed(history):
            if candidate == current or not self.path_of(candidate).is_dir():
                continue
            try:
                self.open(candidate, verify=True)
            except SnapshotError as exc:
                log.warning("rollback candidate skipped", extra={"snapshot_id": candidate, "error": str(exc)})
                continue
            self.promote(candidate)
            return candidate
        raise SnapshotError(f"no earlier valid snapshot to roll back to under {self.root}")

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` snapshots (never the current one) and stale staging folders."""
        current = self.current_id()
        removed = []
        ids = self.list_ids()
        for old in ids[: max(0, len(ids) - keep)]:
            if old != current:
                shutil.rmtree(self.path_of(old), ignore_errors=True)
                removed.append(old)
        return removed + self.remove_staging()

    def remove_staging(self) -> list[str]:
        """Delete staging folders (left by killed runs); only safe while holding the nightly lock."""
        removed = []
        if self.root.is_dir():
            for staging in self.root.glob(f"{_STAGING}*"):
                shutil.rmtree(staging, ignore_errors=True)
                removed.append(staging.name)
        return removed
