"""One immutable LMDB snapshot: writer, read-only reader, manifest.

Named databases inside one LMDB environment:

==========  ===============================  =====================================
database    key                              value
==========  ===============================  =====================================
meta        ``manifest``, ``vocabulary``     JSON
entities    entity id (4 bytes, big-endian)  ``type\\ttext`` (UTF-8)
items       item id (UTF-8)                  entity ids (little-endian uint32)
titles      item id (UTF-8)                  title (UTF-8), for explanations
rows        :func:`keys.query_key`           :func:`keys.encode_row`
item_vecs   item id (UTF-8)                  unit vector (little-endian float16)
query_vecs  :func:`keys.query_key`           unit vector (little-endian float16)
==========  ===============================  =====================================

A query's row holds every precomputed (query, entity) score, so serving a
request costs one LMDB read. The item and entity tables are small next to
the rows and are loaded into memory when a reader opens, as a padded
(items x entities) id matrix, so the hot path gathers with numpy instead
of looping in Python. Item vectors (for the item-level similarity term) are
loaded the same way; a snapshot built with the term off holds none.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import sys
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from pathlib import Path

import lmdb
import numpy as np
from cachetools import LRUCache

from entrel.cache.keys import FORMAT_VERSION, decode_row, encode_row, entity_id_key, item_key, query_key
from entrel.catalog.entity import Entity, EntityType
from entrel.errors import EntrelError

__all__ = ["Manifest", "SnapshotError", "SnapshotReader", "SnapshotWriter"]

_DBS = (b"meta", b"entities", b"items", b"titles", b"rows", b"item_vecs", b"query_vecs")
_VECTOR = np.dtype("<f2")
_COMMIT_EVERY = 5000
# Bytes of decoded rows and query vectors a reader keeps for the queries asked most recently (keys and
# Python's overhead counted). A head query's row is then a dict lookup, not an LMDB transaction, a B-tree
# walk and a decode (about 30 us a query in a serving thread, measured with py-spy). A row larger than the
# whole budget is read each time; a query the snapshot lacks is not kept.
_HOT_QUERY_BYTES = 32 << 20
MANIFEST_FILE = "manifest.json"
# SHA-256 of data.mdb as written, so a damaged file is named as such.
CHECKSUM_FILE = "data.sha256"


def _data_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path / "data.mdb", "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _damage(path: Path) -> str | None:
    """Why the snapshot at `path` cannot be trusted: its checksum fails or it was never finished."""
    try:
        expected = (path / CHECKSUM_FILE).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if not (path / MANIFEST_FILE).is_file():
            return "has no manifest (incomplete write?)"
        return None  # written before checksums were kept
    if _data_checksum(path) != expected:
        return f"data.mdb fails its checksum in {CHECKSUM_FILE} (the file was damaged or changed after writing)"
    return None


class SnapshotError(EntrelError, RuntimeError):
    """A snapshot is missing, corrupt, of another format, or fails verification."""


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds and how it was made (also written beside it as JSON)."""

    snapshot_id: str
    model_fingerprint: str
    model_name: str
    created_at: str
    counts: dict[str, int]
    format_version: int = FORMAT_VERSION
    sources: dict[str, str] = field(default_factory=dict)
    build_seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class SnapshotWriter:
    """Fills a new snapshot directory; nothing reads it until the store promotes it.

    Get one from :meth:`SnapshotStore.writing <entrel.cache.SnapshotStore.writing>`, which publishes it.
    """

    def __init__(self, path: Path, snapshot_id: str, map_size_mb: int = 4096) -> None:
        self.path = Path(path)
        self.snapshot_id = snapshot_id
        # Set by finish: the store publishes only a finished snapshot.
        self.manifest: Manifest | None = None
        self.path.mkdir(parents=True, exist_ok=False)
        self._env = lmdb.open(str(self.path), map_size=map_size_mb << 20, max_dbs=len(_DBS), sync=False)
        self._dbs = {name: self._env.open_db(name) for name in _DBS}
        self._entity_count = 0
        self._counts = {"entities": 0, "items": 0, "queries": 0, "pairs": 0, "item_vectors": 0, "query_vectors": 0}

    def _put_all(self, db: bytes, pairs: Iterable[tuple[bytes, bytes]]) -> int:
        """Write in chunked transactions so memory stays flat on big snapshots."""
        written = 0
        txn = self._env.begin(write=True, db=self._dbs[db])
        try:
            for key, value in pairs:
                txn.put(key, value)
                written += 1
                if written % _COMMIT_EVERY == 0:
                    txn.commit()
                    txn = self._env.begin(write=True, db=self._dbs[db])
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        return written

    def add_entities(self, entities: Sequence[Entity]) -> None:
        """Entities get ids 0.. in the order given; call once, before items and rows."""
        if self._entity_count:
            raise SnapshotError("entities are written once per snapshot")
        self._put_all(
            b"entities",
            ((entity_id_key(i), f"{e.type.value}\t{e.text}".encode()) for i, e in enumerate(entities)),
        )
        self._entity_count = self._counts["entities"] = len(entities)

    def add_items(self, items: Iterable[tuple[str, str, Sequence[int]]]) -> None:
        """(item id, title, entity ids) per item."""
        titles: list[tuple[bytes, bytes]] = []

        def entity_rows() -> Iterable[tuple[bytes, bytes]]:
            for item_id, title, entity_ids in items:
                ids = np.asarray(entity_ids, dtype="<u4")
                if ids.size and int(ids.max()) >= self._entity_count:
                    raise SnapshotError(f"item {item_id!r} refers to an entity id past the entity table")
                key = item_key(item_id)
                titles.append((key, title.encode("utf-8")))
                yield key, ids.tobytes()

        self._counts["items"] += self._put_all(b"items", entity_rows())
        self._put_all(b"titles", titles)

    def add_rows(self, rows: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """(normalised query, entity ids, scores) per query."""

        def encoded() -> Iterable[tuple[bytes, bytes]]:
            for query, ids, scores in rows:
                self._counts["pairs"] += len(ids)
                yield query_key(query), encode_row(ids, scores)

        self._counts["queries"] += self._put_all(b"rows", encoded())

    def add_item_vectors(self, vectors: Iterable[tuple[str, np.ndarray]]) -> None:
        """(item id, unit vector) per item; float16 halves the size and moves cosines by < 1e-3."""
        self._counts["item_vectors"] += self._put_all(
            b"item_vecs", ((item_key(i), np.asarray(v, dtype=_VECTOR).tobytes()) for i, v in vectors)
        )

    def add_query_vectors(self, vectors: Iterable[tuple[str, np.ndarray]]) -> None:
        """(normalised query, unit vector) per precomputed query."""
        self._counts["query_vectors"] += self._put_all(
            b"query_vecs", ((query_key(q), np.asarray(v, dtype=_VECTOR).tobytes()) for q, v in vectors)
        )

    def put_meta(self, key: str, value: str) -> None:
        self._put_all(b"meta", [(key.encode(), value.encode("utf-8"))])

    def finish(self, manifest: Manifest) -> Manifest:
        """Write the manifest (with the counts as written), sync to disk and close."""
        manifest = Manifest(**{**asdict(manifest), "counts": dict(self._counts)})
        self.put_meta("manifest", manifest.to_json())
        self._env.sync(True)
        self._env.close()
        (self.path / CHECKSUM_FILE).write_text(_data_checksum(self.path) + "\n", encoding="ascii")
        (self.path / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")
        self.manifest = manifest
        return manifest

    def abort(self) -> None:
        """Close without finishing (a no-op after finish); the folder stays until the store prunes it."""
        self._env.close()


@dataclass(frozen=True)
class _QueryEntry:
    """What a snapshot holds for one query: its row and its vector, each None when absent (read-only arrays);
    and about how many bytes keeping it costs, its key's included."""

    row: tuple[np.ndarray, np.ndarray] | None
    vector: np.ndarray | None
    size: int = 0


# Python's cost of a kept entry beside its LMDB bytes and its key: the entry, the arrays' headers, the bytes
# objects' headers, a tuple, the cache's own slots (660 bytes measured with tracemalloc; rounded up).
_ENTRY_OVERHEAD = 700


_ABSENT = _QueryEntry(None, None)

# LMDB opens an environment once per process: readers are shared by path and
# close when their last holder drops them (CPython frees them at once).
_OPEN: weakref.WeakValueDictionary[Path, SnapshotReader] = weakref.WeakValueDictionary()
_OPEN_LOCK = threading.Lock()


class SnapshotReader:
    """Read-only view of a promoted snapshot (a :class:`~entrel.cache.SnapshotView`). Thread-safe for concurrent requests.

    Get one with :meth:`open`; every holder in a process shares it.
    """

    @classmethod
    def open(cls, path: str | Path) -> SnapshotReader:
        key = Path(path).resolve()
        with _OPEN_LOCK:
            reader = _OPEN.get(key)
            if reader is None:
                reader = _OPEN[key] = cls(key)
        return reader

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise SnapshotError(f"no snapshot at {self.path} (data.mdb missing)")
        try:
            # Immutable once promoted: no lock file, no writer to coordinate with.
            self._env = lmdb.open(str(self.path), readonly=True, lock=False, max_dbs=len(_DBS), readahead=False)
            self._dbs = {name: self._env.open_db(name, create=False) for name in _DBS}
            with self._env.begin() as txn:
                raw_manifest = txn.get(b"manifest", db=self._dbs[b"meta"])
                raw_vocabulary = txn.get(b"vocabulary", db=self._dbs[b"meta"])
        except (lmdb.Error, OSError) as exc:
            raise SnapshotError(f"snapshot {self.path} {_damage(self.path) or f'cannot be opened: {exc}'}") from exc
        if raw_manifest is None:
            raise SnapshotError(f"snapshot {self.path} {_damage(self.path) or 'has no manifest in its data'}")
        try:
            self.manifest = Manifest.from_json(raw_manifest.decode())
        except (ValueError, TypeError) as exc:
            raise SnapshotError(f"snapshot {self.path} {_damage(self.path) or f'has an unreadable manifest: {exc}'}") from exc
        if self.manifest.format_version != FORMAT_VERSION:
            raise SnapshotError(
                f"snapshot {self.path} has format version {self.manifest.format_version}, "
                f"this entrel reads {FORMAT_VERSION}; rebuild it with `entrel nightly`"
            )
        self.vocabulary_json = raw_vocabulary.decode() if raw_vocabulary else ""
        self._load_tables()
        self._hot_queries: LRUCache[str, _QueryEntry] = LRUCache(_HOT_QUERY_BYTES, getsizeof=attrgetter("size"))
        self._hot_lock = threading.Lock()

    def _load_tables(self) -> None:
        try:
            with self._env.begin() as txn:
                entities = [
                    Entity(EntityType(t), text)
                    for t, _, text in (
                        v.decode().partition("\t") for v in txn.cursor(self._dbs[b"entities"]).iternext(keys=False)
                    )
                ]
                item_ids: list[str] = []
                rows: list[np.ndarray] = []
                for key, value in txn.cursor(self._dbs[b"items"]):
                    item_ids.append(key.decode("utf-8"))
                    rows.append(np.frombuffer(value, dtype="<u4"))
                vectors = {k.decode("utf-8"): np.frombuffer(v, dtype=_VECTOR) for k, v in txn.cursor(self._dbs[b"item_vecs"])}
        except (lmdb.Error, ValueError, UnicodeDecodeError) as exc:
            raise SnapshotError(f"snapshot {self.path} {_damage(self.path) or f'is corrupt: {exc}'}") from exc
        counts = self.manifest.counts
        if len(entities) != counts.get("entities") or len(item_ids) != counts.get("items"):
            raise SnapshotError(
                f"snapshot {self.path} does not match its manifest: {len(entities)} entities and "
                f"{len(item_ids)} items read, manifest says {counts}"
            )
        self.entities: list[Entity] = entities
        self.entity_ids: dict[Entity, int] = {e: i for i, e in enumerate(entities)}
        self.item_rows: dict[str, int] = {item_id: i for i, item_id in enumerate(item_ids)}
        width = max((len(r) for r in rows), default=0)
        # -1 marks padding; counts say how many real entities each row holds.
        self.item_entities = np.full((len(rows), width), -1, dtype=np.int32)
        self.item_counts = np.zeros(len(rows), dtype=np.int32)
        for i, row in enumerate(rows):
            self.item_entities[i, : len(row)] = row
            self.item_counts[i] = len(row)
        # (items x dimension) float32 in item row order, or None when the snapshot holds no item vectors.
        # Stored as float16 (half the disk); widened once here, so a request gathers its rows and takes the
        # product directly: converting 1000 rows per request cost more than the rest of the similarity term.
        self._item_vectors: np.ndarray | None = None
        if vectors:
            if vectors.keys() != self.item_rows.keys() or len({v.size for v in vectors.values()}) != 1:
                raise SnapshotError(f"snapshot {self.path}: item vectors do not match the items (one per item, one size)")
            self._item_vectors = np.stack([vectors[i] for i in item_ids], dtype=np.float32)

    # -- SnapshotView: what serving reads --------------------------------

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id

    @property
    def entity_count(self) -> int:
        return len(self.entities)

    @property
    def similarity_source(self) -> str:
        # Snapshots from before the setting hold item-text vectors.
        return (self.manifest.sources or {}).get("similarity_source") or "item_text"

    def entity(self, entity_id: int) -> Entity:
        return self.entities[entity_id]

    def entity_id(self, entity: Entity) -> int | None:
        return self.entity_ids.get(entity)

    def item_positions(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row of each item in the in-memory item tables, -1 for items not in the snapshot."""
        return np.fromiter(map(self.item_rows.get, item_ids, itertools.repeat(-1)), np.int64, len(item_ids))

    def item_entity_ids(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the padded id matrix (all -1 for unknown items) and their entity counts: one numpy gather."""
        known = positions >= 0
        safe = np.where(known, positions, 0)
        ids = self.item_entities[safe]
        ids[~known] = -1
        return ids, np.where(known, self.item_counts[safe], 0).astype(np.int32)

    def item_vectors(self, positions: np.ndarray) -> np.ndarray | None:
        return None if self._item_vectors is None else self._item_vectors[positions]

    def row(self, normalized_query: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The query's (entity ids ascending, scores), or None when it was not precomputed."""
        return self._query_entry(normalized_query).row

    def query_vector(self, normalized_query: str) -> np.ndarray | None:
        """The query's precomputed unit vector (float16), or None."""
        return self._query_entry(normalized_query).vector

    def _query_entry(self, normalized_query: str) -> _QueryEntry:
        """The query's row and vector, read together in one transaction and kept while the query stays hot."""
        with self._hot_lock:
            entry = self._hot_queries.get(normalized_query)
        if entry is not None:
            return entry
        key = query_key(normalized_query)
        with self._env.begin() as txn:
            row = txn.get(key, db=self._dbs[b"rows"])
            vector = txn.get(key, db=self._dbs[b"query_vecs"])
        if row is None and vector is None:  # not kept: a stream of unknown queries must not push hot ones out
            return _ABSENT
        size = _ENTRY_OVERHEAD + sys.getsizeof(normalized_query) + len(row or b"") + len(vector or b"")
        entry = _QueryEntry(
            None if row is None else decode_row(row), None if vector is None else np.frombuffer(vector, dtype=_VECTOR), size
        )
        with self._hot_lock, contextlib.suppress(ValueError):  # ValueError: larger than the whole budget
            self._hot_queries[normalized_query] = entry
        return entry

    def titles(self, item_ids: Sequence[str]) -> list[str]:
        """Titles of known items, '' for the rest (one batched read)."""
        known = [item_key(i) for i in item_ids if i in self.item_rows]
        with self._env.begin() as txn:
            found = dict(txn.cursor(self._dbs[b"titles"]).getmulti(known))
        return [found.get(item_key(i), b"").decode("utf-8") if i in self.item_rows else "" for i in item_ids]

    def queries(self) -> list[str]:
        """Normalised queries with a precomputed row (digest-keyed long ones excluded)."""
        with self._env.begin() as txn:
            return [k[2:].decode() for k in txn.cursor(self._dbs[b"rows"]).iternext(values=False) if k[:2] == b"q:"]

    def verify(self) -> None:
        """Full check of the data file's checksum and every row against the manifest; raises SnapshotError."""
        if damage := _damage(self.path):
            raise SnapshotError(f"snapshot {self.path} {damage}")
        n_entities = len(self.entities)
        rows = pairs = 0
        try:
            with self._env.begin() as txn:
                for key, value in txn.cursor(self._dbs[b"rows"]):
                    ids, scores = decode_row(value)
                    if len(value) != ids.size * 8:
                        raise SnapshotError(f"row {key[:60]!r} has a torn value ({len(value)} bytes)")
                    if ids.size and (int(ids[-1]) >= n_entities or np.any(np.diff(ids.astype(np.int64)) <= 0)):
                        raise SnapshotError(f"row {key[:60]!r} has entity ids out of order or range")
                    if not np.all(np.isfinite(scores)) or np.any((scores < 0) | (scores > 1)):
                        raise SnapshotError(f"row {key[:60]!r} has scores outside [0, 1]")
                    rows += 1
                    pairs += ids.size
        except lmdb.Error as exc:
            raise SnapshotError(f"snapshot {self.path} is corrupt: {exc}") from exc
        expected = (self.manifest.counts.get("queries"), self.manifest.counts.get("pairs"))
        if (rows, pairs) != expected:
            raise SnapshotError(f"snapshot {self.path}: {rows} rows / {pairs} pairs read, manifest says {expected}")
        if self.item_entities.size and int(self.item_entities.max()) >= n_entities:
            raise SnapshotError(f"snapshot {self.path}: an item refers to a missing entity")
