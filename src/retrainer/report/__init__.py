"""A self-contained HTML report of one model's life: live metric per champion with
deployments and rollbacks, estimated vs realised performance, drift per feature over time,
the decision timeline and the versions with their lineage. Charts are inline SVG; the file
needs no network.

>>> from retrainer.core.spec import parse_spec
>>> from retrainer.plumbing.workspace import Workspace
>>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://rep", "models": {"m": {
...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
...     "features": {"numeric": ["x"]}}}}, environ={})
>>> with Workspace(spec) as ws:
...     html = build_report(ws, "m")
>>> html.startswith("<!doctype html>"), "<svg" in html
(True, True)
"""

from __future__ import annotations

from pathlib import Path

from ..core.files import atomic_output
from ..plumbing.workspace import Workspace
from .data import collect
from .html import render


def build_report(ws: Workspace, model: str) -> str:
    """The report of ``model`` as one HTML string."""
    return render(collect(ws, model))


def write_report(ws: Workspace, model: str, out: str | Path) -> Path:
    """Write the report of ``model`` to ``out`` (see :func:`retrainer.core.files.atomic_output`:
    a temporary name renamed into place, or straight into a device such as /dev/stdout)."""
    path = Path(out)
    html = build_report(ws, model)
    with atomic_output(path, what="report --out") as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path


__all__ = ["build_report", "write_report"]
