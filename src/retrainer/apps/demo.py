"""The bundled demo: fifty years of NOAA weather through the whole loop on a simulated clock.

The first ten years train the first champion; then every day's weather is predicted through
the rollout routing and logged, its actual arrives a day later, and every four weeks
``maintain`` monitors, decides and acts (fine-tune, full retrain through the gate, canary
rollout, rollback). Nothing is forced: what the gate and the policy do is what the data makes
them do. The timeline, a summary and ``demo-report.html`` come out at the end.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..core.errors import InputError
from ..core.progress import NO_PROGRESS, Progress, current, reporting
from ..core.spec import load_spec
from ..datasets import WEATHER_FEATURES, weather
from ..plumbing.workspace import Workspace
from .replay import ReplayConfig, ReplaySummary, TimelineEntry, replay

Say = Callable[[str], None]
MODEL = "weather"


def demo_spec(folder: Path, store: str | None = None) -> dict[str, Any]:
    """The demo's ``retrainer.yaml``: LightGBM on a ten-year window, a monitor window long
    enough for 100 daily samples, a canary rollout and a policy scaled to daily data."""
    return {
        "store": store or f"sqlite:///{folder / 'retrainer.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {
            MODEL: {
                "task": "classification",
                "target": "rain",
                "id_column": "day_id",
                "time_column": "date",
                "features": {"numeric": WEATHER_FEATURES},
                "family": "lightgbm",
                # one thread: on 3,650 rows OpenMP spin-waiting costs far more than it saves
                "params": {"n_estimators": 150, "num_threads": 1},
                "fallback_family": "randomforest",
                "training": {"window_days": 3650},
                "validation": {"scheme": "holdout"},
                "monitor": {"window": "120d", "min_samples": 100, "actuals_delay": "1d"},
                "gate": {"min_improvement": 0.005, "min_rows": 60},
                "fine_tune": {"validation_fraction": 0.3, "min_rows": 60, "rounds": 30},
                "policy": {
                    "degradation": 0.08,
                    "critical_degradation": 0.15,
                    "max_days_since_update": 180,
                    "max_days_since_full_retrain": 365,
                    "max_fine_tunes": 3,
                },
                "rollout": {
                    "mode": "canary",
                    "steps": [0.5, 1.0],
                    "watch": "28d",
                    "min_samples": 40,
                },
                "retention": {"keep": 8},
            }
        },
    }


@dataclass(frozen=True)
class DemoResult:
    folder: str
    report: str
    summary: ReplaySummary
    timeline: list[TimelineEntry]
    versions: list[str]
    champion: str | None


def _line(e: TimelineEntry) -> str:
    live = "" if e.live_metric is None else f"{e.metric} {e.live_metric:.3f}"
    what = e.action.replace("_", " ")
    tail = f" [{'; '.join(e.events)}]" if e.events else ""
    return (
        f"{e.at:%Y-%m-%d}  {what:<13} {e.champion or '-':>7}  {live:<15} "
        f"{e.reason[:70]} → {e.outcome[:75]}{tail}"
    )


def summary_lines(s: ReplaySummary) -> list[str]:
    rows = [
        ("replayed", f"{s.start:%Y-%m-%d} → {s.end:%Y-%m-%d}"),
        (
            "served predictions",
            f"{s.served:,} ({', '.join(f'{k} {v:,}' for k, v in s.by_arm.items())})",
        ),
        (f"served {s.metric}", f"{s.value:.4f}"),
        ("trainings", f"{s.trainings} ({s.full_retrains} full, {s.fine_tunes} fine-tunes)"),
        ("training CPU", f"{s.training_cpu_seconds:.1f} s"),
        ("decisions", ", ".join(f"{k} {v}" for k, v in sorted(s.decisions.items()))),
        ("deployments / rollbacks", f"{s.deployments} / {s.rollbacks}"),
        ("gate rejections", str(s.gate_rejections)),
        ("champion now", s.champion or "-"),
        ("wall time", f"{s.wall_seconds:.0f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]


MARKER = ".retrainer-demo"  # written into the folder the demo creates: only such a folder is wiped


def fresh_folder(folder: Path) -> None:
    """Make ``folder`` an empty demo workspace. A missing or empty folder is used as it is;
    one the demo made before (it holds :data:`MARKER`) is emptied; any other folder is
    refused, so ``--dir .`` never deletes the user's work.

    >>> import tempfile
    >>> mine = Path(tempfile.mkdtemp()) / "ws"
    >>> fresh_folder(mine); _ = (mine / "old.db").write_text("x"); fresh_folder(mine)
    >>> sorted(p.name for p in mine.iterdir())
    ['.retrainer-demo']
    >>> theirs = Path(tempfile.mkdtemp()); _ = (theirs / "notes.txt").write_text("mine")
    >>> try:
    ...     fresh_folder(theirs)
    ... except InputError:
    ...     print("refused", sorted(p.name for p in theirs.iterdir()))
    refused ['notes.txt']
    """
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"--dir {folder}: is a file, not a folder. Name a new or empty folder for the demo "
            "workspace.",
            folder=str(folder),
        )
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise InputError(
                f"--dir {folder}: the folder is not empty and was not made by the demo, so the "
                "demo will not replace it (its files would be deleted). Name a new or empty "
                "folder, e.g. --dir demo-workspace.",
                folder=str(folder),
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(
        "Made by `retrainer demo`; a later `retrainer demo --dir` here replaces this folder.\n"
    )


def run_demo(
    folder: Path,
    say: Say,
    store: str | None = None,
    *,
    delay_days: float = 1.0,
    maintain_every_days: int = 28,
    years: float | None = None,
    report: Path | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Replay the weather data into a fresh workspace in ``folder``; ``years`` limits the
    replay after the ten initial years (all of it by default). The report goes to ``report``
    (default ``demo-report.html`` in the current folder). ``progress`` hears of the days
    replayed at each maintenance turn, then of the report."""
    shown = progress or current()
    fresh_folder(folder)
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(demo_spec(folder, store), sort_keys=False))
    spec = load_spec(config, environ={})
    data = weather()
    cfg = ReplayConfig(
        initial_days=3652,
        delay_days=delay_days,
        maintain_every_days=maintain_every_days,
        days=None if years is None else int(years * 365.25),
        triggered_by="policy",
    )
    say("weather 1949–1958 trains the first champion; then each day is served, its actual")
    say(f"arrives {delay_days:g} day(s) later, and maintain runs every {maintain_every_days} days.")
    say(f"{'date':<10}  {'decision':<13} {'champion':>7}  {'live metric':<15} reason → outcome")
    quiet = [0]
    first = data["date"].min() + timedelta(days=cfg.initial_days)
    last = data["date"].max()
    if cfg.days is not None:
        last = min(last, first + timedelta(days=cfg.days))
    reached = [first]

    def on_turn(e: TimelineEntry) -> None:
        at = min(pd.Timestamp(e.at), last)  # the last turn may end after the data
        shown.advance(max((at - reached[0]).days, 0))
        reached[0] = max(reached[0], at)
        if e.action == "nothing" and not e.events:
            quiet[0] += 1
            return
        if quiet[0]:
            say(f"{'':<10}  ({quiet[0]} quiet check{'s' if quiet[0] > 1 else ''})")
            quiet[0] = 0
        say(_line(e))

    from ..report import write_report

    with Workspace(spec) as ws:
        shown.stage("replay", total=max((last - first).days, 1), unit="days")
        with reporting(NO_PROGRESS):  # the turns' own stages would be a line per turn
            result = replay(ws, MODEL, data, cfg, on_turn=on_turn)
        shown.stage("report")
        report = write_report(ws, MODEL, report or Path("demo-report.html")).resolve()
        versions = [v.version for v in ws.store.list_versions(MODEL)]
        champion = ws.store.roles(MODEL).champion
    shown.done()
    say("")
    say("summary")
    for line in summary_lines(result.summary):
        say(line)
    say(f"report: {report}")
    say(f"workspace in {folder}; try: retrainer -c {config} decisions {MODEL}")
    return DemoResult(str(folder), str(report), result.summary, result.timeline, versions, champion)
