"""The bundled demo: NOAA weather through the registry — train, deploy, retrain, roll back."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.spec import load_spec
from ..datasets import WEATHER_FEATURES, weather
from .ingest import ingest_frame
from .registry_ops import deploy, rollback
from .train import train
from .workspace import Workspace

Say = Callable[[str], None]


def demo_spec(folder: Path, store: str | None = None) -> dict[str, Any]:
    return {
        "store": store or f"sqlite:///{folder / 'retrainer.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {
            "weather": {
                "task": "classification",
                "target": "rain",
                "id_column": "day_id",
                "time_column": "date",
                "features": {"numeric": WEATHER_FEATURES},
                "family": "lightgbm",
                "fallback_family": "randomforest",
                "training": {"window_days": 3650},
                "validation": {"scheme": "walk_forward", "folds": 3},
            }
        },
    }


@dataclass(frozen=True)
class DemoResult:
    folder: str
    versions: list[str]
    champion: str | None


def run_demo(folder: Path, say: Say, store: str | None = None) -> DemoResult:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(demo_spec(folder, store), sort_keys=False))
    spec = load_spec(config, environ={})
    data = weather()
    with Workspace(spec) as ws:
        first = data[data["date"] < "1959-01-01"]
        r = ingest_frame(ws, "weather", first, where="weather 1949–1958")
        say(f"ingested 1949–1958: {r.inserted} rows")
        v1 = train(ws, "weather", deploy=True, created_by="demo", reason="initial model").version
        say(f"trained {v1.version} ({v1.family}) accuracy {v1.metrics['accuracy']:.3f} — champion")
        later = data[data["date"] < "1969-01-01"]
        r = ingest_frame(ws, "weather", later, where="weather 1959–1968")
        say(f"ingested 1959–1968: {r.inserted} new rows, {r.duplicates} already stored")
        r2 = train(ws, "weather", deploy=True, created_by="demo", reason="ten more years")
        v2 = r2.version
        gate = v2.details.get("gate") or {}
        say(
            f"retrained {v2.version} (parent {v2.parent}) accuracy {v2.metrics['accuracy']:.3f}; "
            f"gate vs {gate.get('champion_version')}: {gate.get('verdict')} — "
            + ("deployed" if r2.deployed else "not deployed: " + "; ".join(gate.get("reasons", [])))
        )
        if not r2.deployed:
            deploy(
                ws,
                "weather",
                v2.version,
                reason="demo: forced, to show a rollback",
                triggered_by="demo",
                forced=True,
            )
            say(f"deployed {v2.version} with --force (recorded as forced)")
        ev = rollback(ws, "weather", reason="demo rollback", triggered_by="demo")
        say(f"rolled back {ev.from_version} → {ev.to_version}")
        versions = [v.version for v in ws.store.list_versions("weather")]
        champion = ws.store.roles("weather").champion
    say(f"workspace in {folder}; try: retrainer -c {config} versions weather")
    return DemoResult(str(folder), versions, champion)
