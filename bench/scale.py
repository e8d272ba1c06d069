"""Scale benchmark: the data path through the real CLI at 100,000 and 1,000,000 rows, each step
beside its floor.

One model (20 numeric features, 2 categorical with 4 and 30 levels, a 0/1 target that is a
logistic function of four features and both categories; string ids, event times over 60 days)
is generated once per size, seeded, into the git-ignored ``bench/.data`` and reused: ``rows.csv``
(N labelled rows, days 1-60), ``score.csv`` (N new rows of day 61, other ids, features only)
and ``actuals.csv`` (their id, time and label). In a fresh workspace per size (SQLite store,
lightgbm family), each step is one ``retrainer`` process of the venv, timed from spawn to exit
with its own peak RSS (``os.wait4``): ingest, train --deploy, predict (logged), feedback,
monitor, drift, maintain --dry-run. Each step's JSON is checked (ingest inserted N, feedback
matched N, ...); a failing step fails the bench with its stderr; a step that outlives its
timeout is killed and reported as not finished, and the steps that need it are skipped.

Each floor is one ``python -m bench.scale_floor`` process, timed the same way (see that module
for what each does). Start-up: ``retrainer --help`` and ``retrainer status MODEL``, median of
repeated runs, beside ``python -c pass``.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as dist_version
from pathlib import Path

from .common import WORK
from .scale_page import render, size_label
from .scale_run import FULL, MODEL, QUICK, STARTUP_RUNS, _fail, run_size, startup


def peers() -> dict[str, str]:
    return {"lightgbm": dist_version("lightgbm"), "pyarrow": dist_version("pyarrow")}


def run(quick: bool) -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if quick else FULL
    runs = STARTUP_RUNS[quick]
    load_before = os.getloadavg()[0]
    results = []
    for n in sizes:
        last = n == sizes[-1]
        results.append(run_size(n, quick, runs if last or not quick else 0, last or not quick))
    retrainer = str(Path(sys.executable).parent / "retrainer")
    print("   scale: start-up", file=sys.stderr, flush=True)
    startups = {"retrainer --help": startup([retrainer, "--help"], runs)}
    for res in results:
        if res.status:
            startups[f"retrainer status {MODEL} ({size_label(res.n)} workspace)"] = res.status
    startups["python -c pass"] = startup([sys.executable, "-c", "pass"], runs)
    for name, group in startups.items():
        for r in group:
            if r.code != 0:
                raise _fail(name, r, "non-zero exit")
    load_after = os.getloadavg()[0]
    return render(results, startups, quick, (load_before, load_after))
