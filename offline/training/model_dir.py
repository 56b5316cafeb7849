"""Trained model directories: weights, a fingerprint, and a model card."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from entrel.scoring import MODEL_INFO_FILE

__all__ = ["record_metrics", "reusable_info", "save_model"]

log = logging.getLogger(__name__)


def _weights_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin")):
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _card(info: dict[str, Any]) -> str:
    lines = [f"# entrel model `{info['fingerprint']}`", "", info.get("description", ""), ""]
    for key in ("base_model", "created_at", "training_seconds"):
        if key in info:
            lines.append(f"- {key.replace('_', ' ')}: {info[key]}")
    for section in ("data", "split", "metrics", "stages"):
        if info.get(section):
            lines += ["", f"## {section}", "", "```json", json.dumps(info[section], indent=2), "```"]
    return "\n".join(lines) + "\n"


def save_model(encoder: Any, directory: str | os.PathLike[str], info: dict[str, Any]) -> str:
    """Save `encoder` with entrel_model.json and README.md; return its fingerprint.

    Written to a temporary folder and renamed, so a crash never leaves a
    half-written model where the server or nightly job would load it.
    """
    target = Path(directory)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    encoder.save(str(staging))
    info = {
        **info,
        # Where the weights were trained (the GPU when torch saw one): runs on two devices differ slightly.
        "trained_on": str(encoder.device),
        "fingerprint": _weights_digest(staging),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (staging / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (staging / "README.md").write_text(_card(info), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)
    return info["fingerprint"]


def record_metrics(directory: str | os.PathLike[str], metrics: dict[str, Any]) -> None:
    """Add measured metrics to a saved model's info and card (the weights, and so the fingerprint, stay)."""
    target = Path(directory)
    info = json.loads((target / MODEL_INFO_FILE).read_text(encoding="utf-8"))
    info["metrics"] = {**info.get("metrics", {}), **metrics}
    for name, text in ((MODEL_INFO_FILE, json.dumps(info, indent=2) + "\n"), ("README.md", _card(info))):
        partial = target / f".{name}.partial"
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target / name)


def reusable_info(directory: str | os.PathLike[str], config: dict[str, Any], retrain: bool = False) -> dict[str, Any] | None:
    """A saved model's info when it was trained with `config` and may be reused; None when it must be (re)trained."""
    info_file = Path(directory) / MODEL_INFO_FILE
    if retrain or not info_file.is_file():
        return None
    info = json.loads(info_file.read_text(encoding="utf-8"))
    if info.get("config") != config:
        log.info("saved model was trained differently: retraining", extra={"path": str(directory)})
        return None
    return info
