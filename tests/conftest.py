"""Shared fixtures: a throwaway project root holding the real protocol and bundled snapshot."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
REVIEW = "dry-needling-pf"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root in tmp_path with queries/ and the bundled snapshot, as a clone has them."""
    root = tmp_path / "project"
    (root / "queries").mkdir(parents=True)
    shutil.copy(PROJECT / "queries" / f"{REVIEW}.toml", root / "queries")
    shutil.copytree(PROJECT / "data" / "snapshots" / REVIEW, root / "data" / "snapshots" / REVIEW)
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED.exists():
        return
    skip = pytest.mark.skip(reason=f"{SHARED} is absent (tests marked 'shared' need it)")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)
