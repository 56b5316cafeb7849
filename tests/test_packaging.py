"""The package map: one import root, and layers that only import downwards (library <- jobs <- CLI)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
JOBS = ("entrel.offline", "entrel.bench")


def _modules() -> dict[str, Path]:
    """Every module of every package folder, by the dotted name it installs under."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            # A folder mapped on its own (entrel.offline) is not also part of its parent's folder.
            found.setdefault(name, path)
    return found


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_package_folder_is_listed_for_the_wheel():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert on_disk == listed, f"pyproject's packages differ from the folders: {on_disk ^ listed}"


def test_layers_import_only_downwards():
    offences = []
    for name, path in _modules().items():
        imported = _imports(path)
        is_job = name.startswith(JOBS)
        if name != "entrel.cli" and not is_job:
            offences += [f"library {name} imports job {i}" for i in imported if i.startswith(JOBS)]
        offences += [f"{name} imports the CLI" for i in imported if i == "entrel.cli" and name != "entrel.cli"]
        offences += [f"{name} imports top-level {i}" for i in imported if i.split(".")[0] in ("offline", "bench")]
    assert not offences, "\n".join(offences)
