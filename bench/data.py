"""The benchmark's data: its own data dir with a snapshot of the configured model, built when missing.

``demo`` uses the settings as given (the embedded demo data by default).
``esci`` reads the ESCI subset through ``entrel.offline.esci`` (from
``$ENTREL_ESCI_DIR``, else ``../shared/data/esci-us``) and writes it into
the data dir as a JSONL catalog and a query log of its judged queries.
Either way the snapshot is built by the real nightly job, without the
miss log, so the same inputs give the same snapshot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from entrel.cache import SnapshotReader, SnapshotStore
from entrel.config import Settings
from entrel.offline import nightly
from entrel.scoring import Scorer

__all__ = ["BenchData", "prepare"]

_DEFAULT_DATA_DIR = {"demo": "var/bench", "esci": "var/bench-esci"}


@dataclass(frozen=True)
class BenchData:
    settings: Settings
    # Setting overrides (dotted key -> value) the server subprocess must get too.
    overrides: dict[str, str]
    snapshot: SnapshotReader
    # The nightly report when this run built the snapshot, else None.
    nightly: dict[str, Any] | None

    def config_args(self, base: list[str]) -> list[str]:
        """The CLI's own --config/--set flags, then the benchmark's."""
        return [*base, *(f"--set={key}={value}" for key, value in self.overrides.items())]


def _esci_inputs(directory: Path) -> dict[str, str]:
    """Write the ESCI products and judged queries as entrel inputs under `directory`; overrides naming them."""
    from entrel.offline import esci

    source = esci.default_data_dir()
    items, labels = esci.read_products(source), esci.read_labels(source)
    return esci.write_entrel_inputs(items, (label.query for label in labels), directory)


def prepare(settings: Settings, data: str, data_dir: str | None, fresh: bool, scorer: Scorer) -> BenchData:
    """Settings pointed at the benchmark's data dir, and its current snapshot (built by the nightly when needed)."""
    directory = Path(data_dir or _DEFAULT_DATA_DIR[data])
    overrides = {"data_dir": str(directory)}
    if data == "esci":
        overrides |= _esci_inputs(directory / "input")
    settings = settings.replace(**overrides)
    store = SnapshotStore(settings.snapshot_root)
    current = store.current_id()
    stale = current is None or store.open(current).manifest.model_fingerprint != scorer.fingerprint
    report = None
    if fresh or stale or current is None:
        done = nightly.run(settings.replace(**{"nightly.use_miss_log": "false"}), scorer=scorer, progress=False)
        current, report = done.snapshot_id, asdict(done)
    return BenchData(settings, overrides, store.open(current), report)
