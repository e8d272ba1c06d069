"""Fault injection: SIGKILL every writing command of the CLI at random points, on SQLite and
PostgreSQL, and check the workspace after each kill (tests/faults/faulthelp.py).

For each backend, one workspace; each command first runs to the end ``MEASURED`` times (the
median duration is the window its kill delays are drawn from), then ``POINTS`` times with a SIGKILL
after a random delay within that window. Writes docs/reliability.md (full run only) and
returns a short summary for docs/benchmarks.md. ``FAULTS_SEED`` replays a run's delays.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

from .common import REPO, WORK, machine

POINTS = 20
MEASURED = 3  # runs to the end per command; their median duration is the kill window
QUICK_POINTS = 2
PAGE = REPO / "docs" / "reliability.md"
SEEDS = {"sqlite": 2601, "postgresql": 2602}


def _harness() -> ModuleType:
    """tests/faults/faulthelp.py, the harness the tests use."""
    folder = str(REPO / "tests" / "faults")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import faulthelp

    return faulthelp


Results = dict[str, tuple[dict[str, float], list[Any]]]  # backend: (typical s, outcomes)


def session_outcomes(backend: str, seed: int, points: int) -> tuple[dict[str, float], list[Any]]:
    """Measure each command once, then run the kill plan; (typical seconds, outcomes)."""
    fh = _harness()
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as tmp, fh.Session(Path(tmp), backend, seed) as s:
        typical = {}
        measured = []
        for command in fh.COMMANDS:
            runs = [s.run(command, fh.KILL_WAIT) for _ in range(MEASURED)]
            typical[command] = round(statistics.median(o.seconds for o in runs), 2)
            measured += runs
        outcomes = measured + [s.run(c, d) for c, d in fh.kill_plan(seed, typical, points)]
    return typical, outcomes


def table(results: Results, seeds: dict[str, int]) -> str:
    fh = _harness()
    lines = [
        "| command | backend | typical s | runs | kills landed mid-run | invariant failures | "
        "seed |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for command in fh.COMMANDS:
        for backend, (typical, outcomes) in results.items():
            mine = [o for o in outcomes if o.command == command]
            killed = sum(o.killed for o in mine)
            failed = sum(bool(o.failures) for o in mine)
            lines.append(
                f"| `retrainer {command}` | {backend} | {typical[command]:.1f} | {len(mine)} | "
                f"{killed} | {failed} | {seeds[backend]} |"
            )
    return "\n".join(lines)


def failures(results: Results) -> list[str]:
    return [o.describe() for _t, outcomes in results.values() for o in outcomes if o.failures]


def page(body: str, broken: list[str], points: int, elapsed: float) -> str:
    found = "\n".join(f"- {line}" for line in broken) or "- none"
    return f"""# Reliability: SIGKILL at random points

Written by `python -m bench --only faults` (bench/faults.py; the harness and its invariants
are tests/faults/faulthelp.py, and `make test` runs two kill points per command and backend
in tests/faults/test_sigkill.py).

For each backend, one workspace (SQLite file, or a fresh PostgreSQL database on the local
server, dropped afterwards) holds four and a half years of the bundled weather rows and two
deployed versions. Each writing command runs through the real CLI in a subprocess: first to
the end {MEASURED} times (the median duration is the "typical s" column and the window for
the delays), then {points} times killed with SIGKILL after a delay drawn uniformly in that
window (seeded: the same seed gives the same delays). What each run needs is prepared
first and acknowledged (a fresh half year of rows for `ingest` and `fine-tune`, logged
predictions for `feedback`, a version other than the champion for `deploy` and
`rollback --to`, an empty store for `restore`). After every run, killed or not:

- the model has exactly one champion; every role points at an existing, non-deleted
  version; every version not deleted has an artifact that exists and verifies; the
  deployment log ends on the champion;
- `retrainer predict` scores rows with the champion;
- every row and actual of a command that exited 0 is there, and a killed `ingest` or
  `feedback` left all of its rows or none;
- a killed `backup` left no file, or a file that restores whole; a killed `restore` left
  an empty store (which then takes the restore) or the whole backup;
- every version a `maintain` registered belongs to a stored decision (named in its outcome,
  or by the version's decision id while a killed run's decision is pending), and a `maintain`
  that exited 0 left no decision pending.

"Kills landed mid-run" counts runs still running when the signal was sent; the others ended
first (exit 0 required); the runs that ended, the measuring runs included, count as runs
too. Replay a run's delays with `FAULTS_SEED=SEED python -m bench --only faults`.

{body}

Invariant failures (command, backend, seed, delay, what broke):

{found}

_Measured {dt.datetime.now():%Y-%m-%d %H:%M} ({elapsed:.0f} s) on {machine()}._

## Disk full during an artifact write

tests/faults/test_disk_full.py (in `make test`) mounts a 2 MB tmpfs as the artifact folder,
trains a champion, fills the file system and runs `retrainer train --deploy`: it exits 1
with "Cannot write the artifact for model 'weather' under FOLDER: [Errno 28] No space left
on device", registers no version, the champion still serves (`retrainer predict` scores with
it) and no temporary file is left on the full disk.
"""


def run(quick: bool) -> str:
    points = QUICK_POINTS if quick else POINTS
    seed_env = os.environ.get("FAULTS_SEED")
    seeds = {b: int(seed_env) if seed_env else s for b, s in SEEDS.items()}
    started = time.perf_counter()
    results: Results = {}
    for backend in _harness().BACKENDS:
        print(f"  faults on {backend} (seed {seeds[backend]})", file=sys.stderr, flush=True)
        results[backend] = session_outcomes(backend, seeds[backend], points)
    body = table(results, seeds)
    broken = failures(results)
    if not quick:
        PAGE.write_text(page(body, broken, points, time.perf_counter() - started))
    counts: dict[str, int] = defaultdict(int)
    for _t, outcomes in results.values():
        for o in outcomes:
            counts["runs"] += 1
            counts["killed"] += o.killed
            counts["failed"] += bool(o.failures)
    return (
        f"SIGKILL at {points} random points of each writing command "
        f"(details in [reliability.md](reliability.md)): {counts['runs']} runs, "
        f"{counts['killed']} killed mid-run, {counts['failed']} with an invariant broken.\n\n"
        + body
    )
