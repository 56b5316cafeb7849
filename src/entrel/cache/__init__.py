"""Versioned LMDB snapshots of precomputed (query, entity) scores."""

from entrel.cache.interface import SnapshotView
from entrel.cache.keys import FORMAT_VERSION
from entrel.cache.snapshot import Manifest, SnapshotError, SnapshotReader, SnapshotWriter
from entrel.cache.store import SnapshotStore

__all__ = ["FORMAT_VERSION", "Manifest", "SnapshotError", "SnapshotReader", "SnapshotStore", "SnapshotView", "SnapshotWriter"]
