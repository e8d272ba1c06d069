"""Family comparison: ``retrainer compare`` on the bundled NOAA weather data.

Weather 1949–1968 is ingested into a fresh workspace (the demo's spec: a 3,650-day window,
three walk-forward folds), then the real CLI runs ``retrainer compare weather --families …
--json`` in a subprocess, which measures each family in its own child process. The table below
is that JSON rendered as markdown; the best value of each column is in bold. Quick mode: two
families on two years.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import WORK, table

FAMILIES = "randomforest,lightgbm,xgboost,catboost,river,mlp"
QUICK_FAMILIES = "randomforest,lightgbm"


def _workspace(folder: Path, first_year: int, last_year: int) -> Path:
    import yaml

    from retrainer.apps.demo import demo_spec
    from retrainer.core.spec import load_spec
    from retrainer.datasets import weather
    from retrainer.lifecycle.ingest import ingest_frame
    from retrainer.plumbing.workspace import Workspace

    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(demo_spec(folder), sort_keys=False))
    data = weather()
    years = data["date"].dt.year
    with Workspace(load_spec(config, environ={})) as ws:
        ingest_frame(ws, "weather", data[(years >= first_year) & (years <= last_year)])
    return config


def _cell(row: dict[str, Any], key: str, primary: str) -> str:
    if key in row["metrics"]:
        m = row["metrics"][key]
        return f"{m['mean']:.4f} ± {m['std']:.4f}" if key == primary else f"{m['mean']:.4f}"
    if key in row["predict_ms"]:
        ms = row["predict_ms"][key]
        return f"{ms:.3f}" if ms < 10 else f"{ms:,.1f}"
    value = row[key]
    if value is None:
        return "n/a"
    if key == "artifact_bytes":
        return f"{value / 1024:,.0f} KB"
    if key == "peak_rss_mb":
        return f"{value:,.0f} (+{value - row['base_rss_mb']:,.0f})"
    return f"{value:.3f}"


def render(body: dict[str, Any], command: str, loads: tuple[float, float]) -> str:
    primary = body["primary_metric"]
    columns = body["columns"]
    headers = ["family"]
    for c in columns:
        label = c["label"]
        if c["key"] == primary:
            label += " (mean ± std)"
        elif c["key"] == "peak_rss_mb":
            label += " (+ fit/predict)"
        elif c["key"] == "artifact_bytes":
            label = "artifact"
        headers.append(label)
    rows, notes = [], []
    for row in body["rows"]:
        if row["status"] != "ok":
            rows.append([row["family"], row["status"], *[""] * (len(columns) - 1)])
            notes.append(f"- {row['family']} {row['status']}: {row['note']}")
            continue
        cells = [row["family"]]
        for c in columns:
            text = _cell(row, c["key"], primary)
            cells.append(f"**{text}**" if row["family"] in c["best"] else text)
        rows.append(cells)
        if row["fine_tune_note"]:
            notes.append(f"- {row['family']} fine-tune n/a: {row['fine_tune_note']}")
    w = body["window"]
    return "\n".join(
        [
            "## Family comparison",
            "",
            "```",
            command,
            "```",
            "",
            f"Model `weather` (rain tomorrow), window {w['start'][:10]} → {w['end'][:10]} "
            f"({w['rows']:,} rows), {body['folds']} walk-forward folds; metrics are fold means "
            f"(fold-to-fold std for the primary metric, {primary}). Fit CPU is per fold; "
            f"fine-tune CPU warm-starts a model fitted on the older 90% on the newest "
            f"{body['fine_tune_rows']} rows. Latencies are the median wall time of repeated "
            "in-process `predict` calls on the model reloaded from its artifact, on the float "
            f"matrix and on a DataFrame ({body['batch_rows']:,} rows for the batch). Peak RSS is "
            "each family's own measuring process (interpreter, libraries and data included; "
            "in brackets the growth while fitting and predicting). Best per column in bold.",
            "",
            table(headers, rows),
            "",
            *notes,
            *([""] if notes else []),
            f"Load average (1 min) on this shared {os.cpu_count()}-core machine: "
            f"{loads[0]:.1f} before, {loads[1]:.1f} after.{load_note(loads)}",
        ]
    )


def load_note(loads: tuple[float, float]) -> str:
    if max(loads) <= (os.cpu_count() or 1):
        return ""
    return (
        " With more runnable threads than cores, the OpenMP-threaded families (lightgbm and "
        "xgboost use two threads) spend CPU spin-waiting and their times swing widely from run "
        "to run; read their CPU and latency figures as upper bounds."
    )


def run(quick: bool) -> str:
    families = QUICK_FAMILIES if quick else FAMILIES
    first_year = 1967 if quick else 1949
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK, prefix="families-") as tmp:
        config = _workspace(Path(tmp), first_year, 1968)
        retrainer = str(Path(sys.executable).parent / "retrainer")
        args = ["compare", "weather", "--families", families]
        before = os.getloadavg()[0]
        proc = subprocess.run(
            [retrainer, "-c", str(config), *args, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        after = os.getloadavg()[0]
    if proc.returncode != 0:
        raise RuntimeError(f"retrainer compare failed ({proc.returncode}):\n{proc.stderr}")
    command = (
        f"# weather {first_year}–1968 ingested into a workspace with the demo spec\n"
        f"retrainer compare weather --families {families}"
    )
    return render(json.loads(proc.stdout), command, (before, after))
