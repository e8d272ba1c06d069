"""The package's layers: what each top-level package may import (docs/architecture.md).

Imports point inward: ``core`` imports nothing of retrainer; the leaves beside it import only
``core``; ``plumbing`` (workspace, leases, tables) sits under ``lifecycle`` (the operations),
which sits under the applications built on them (``apps``: demo, replay, compare, backup) and
the shells (``api``, ``serving``, ``cli``). A test, so a new import across a layer fails here
instead of growing a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "retrainer"

LEAVES = {"core"}
BASE = {"core", "alerts", "evaluation", "families", "store"}
OPERATIONS = BASE | {"datasets", "monitoring", "plumbing", "policy"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "datasets": LEAVES,
    "alerts": LEAVES,
    "evaluation": LEAVES,
    "families": LEAVES,
    "monitoring": LEAVES,
    "policy": LEAVES,
    "store": LEAVES,
    "plumbing": BASE,
    "lifecycle": OPERATIONS,
    "report": OPERATIONS | {"lifecycle"},
    "scheduler": OPERATIONS | {"lifecycle"},
    "apps": OPERATIONS | {"lifecycle", "report"},
    "api": OPERATIONS | {"lifecycle", "report", "apps"},
    "serving": OPERATIONS | {"lifecycle", "report", "scheduler", "apps", "api"},
    "cli": OPERATIONS | {"lifecycle", "report", "scheduler", "apps", "api", "serving"},
    "<top>": {"api"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level retrainer packages ``path`` imports (relative or absolute)."""
    rel = path.relative_to(SRC).parts
    here = ["retrainer", *rel[:-1]]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            if target[0] == "retrainer" and len(target) > 1:
                out.add(target[1])
            elif target == ["retrainer"]:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "retrainer" and len(parts) > 1:
                    out.add(parts[1])
    return out


def test_every_package_imports_only_its_layers() -> None:
    wrong: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).parts
        # a module at the top (retrainer/datasets.py) is a layer of its own
        top = "<top>" if rel[0] == "__init__.py" else path.stem
        pkg = rel[0] if len(rel) > 1 else top
        assert pkg in ALLOWED, f"{pkg} is a new package: add it to ALLOWED and to the doc"
        for bad in sorted(imported_packages(path) - ALLOWED[pkg] - {pkg}):
            wrong.append(f"{path.relative_to(SRC)} imports retrainer.{bad}")
    assert not wrong, "imports across layers (docs/architecture.md):\n" + "\n".join(wrong)
