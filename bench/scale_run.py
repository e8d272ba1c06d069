"""Running the scale benchmark: the data, one timed ``retrainer`` process per step in a fresh
workspace per size, each beside its floor process (see ``bench.scale``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import REPO, RESULT_PREFIX, WORK
from .scale_floor import (
    CATEGORICAL,
    DATA_FORMAT,
    ID,
    NUMERIC,
    SEED,
    TARGET,
    TIME,
)

MODEL = "scale"
FULL, QUICK = (100_000, 1_000_000), (2_000, 5_000)
TIMEOUT = {False: 1800.0, True: 300.0}  # per step (and per floor), full run / quick mode
STARTUP_RUNS = {False: 10, True: 3}
# Quick mode is a smoke test that must end in bounded time on a busy machine: OpenMP threads
# that sleep instead of spinning keep LightGBM from crawling there (steps and floors alike).
QUICK_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
DATA = REPO / "bench" / ".data"
HOLDOUT, EARLY_STOP = 0.2, 0.1  # the spec's training.holdout_fraction; fitting.EARLY_STOP_FRACTION
STEPS = ["ingest", "train", "predict", "feedback", "monitor", "drift", "maintain"]
NEEDS = {
    "train": "ingest",
    "predict": "train",
    "feedback": "predict",
    "monitor": "train",
    "drift": "predict",  # compares the logged inputs with the champion's reference
    "maintain": "train",
}
FLOORS = ("ingest", "train", "predict", "feedback")
TRAIN_TARGET = 1.3  # train may take 1.3x its floor, the other steps 2x
MIB = 1024 * 1024


# -- data ----------------------------------------------------------------------------------


def data_for(n: int, timeout: float) -> Path:
    """The folder of the files for ``n`` rows, generated (in a worker) unless already there."""
    params = {"format": DATA_FORMAT, "rows": n, "seed": SEED, "numeric": len(NUMERIC)}
    folder = DATA / f"scale-{n}"
    stamp = folder / "params.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"   scale: generating {n:,} rows into {folder}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.scale_floor", "generate", str(folder), str(n)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"generating {n} rows failed:\n{proc.stderr[-3000:]}")
    stamp.write_text(json.dumps(params))  # last: a folder without it is made again
    return folder


# -- timing one process --------------------------------------------------------------------


@dataclass
class Run:
    """One process: wall time from spawn to exit and its own peak RSS (None when killed)."""

    wall: float | None
    rss_mb: float
    code: int | None
    stdout: str
    stderr: str
    timeout: float

    @property
    def finished(self) -> bool:
        return self.wall is not None


def timed(
    cmd: Sequence[str], cwd: Path, timeout: float, logs: Path, extra_env: Mapping[str, str] = {}
) -> Run:
    """Run ``cmd`` to its end (or kill its process group at ``timeout``); outputs go to files
    under ``logs``, so no pipe can stall it. ``os.wait4`` gives this child's own peak RSS.
    The environment is this one without ``RETRAINER_*`` settings, plus ``extra_env``."""
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "stdout", logs / "stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env.update(extra_env)
    with out.open("wb") as fo, err.open("wb") as fe:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=fo,
            stderr=fe,
            env=env,
            start_new_session=True,
        )
        box: dict[str, Any] = {}

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            box.update(wall=time.perf_counter() - started, status=status, usage=usage)

        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        reaper.join(timeout)
        killed = reaper.is_alive()
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this Popen started
            reaper.join()
        proc.returncode = os.waitstatus_to_exitcode(box["status"])
    return Run(
        None if killed else box["wall"],
        box["usage"].ru_maxrss / 1024,  # kilobytes on Linux
        None if killed else proc.returncode,
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
        timeout,
    )


def _tail(run: Run) -> str:
    return "\n".join((run.stderr or run.stdout).splitlines()[-25:])


def _fail(what: str, run: Run, why: str) -> RuntimeError:
    return RuntimeError(f"{what} failed ({why}, exit {run.code}):\n{_tail(run)}")


def _json(what: str, run: Run) -> Any:
    if run.code != 0:
        raise _fail(what, run, "non-zero exit")
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError:
        raise _fail(what, run, f"stdout is not JSON: {run.stdout[:200]!r}") from None


def _result(what: str, run: Run) -> dict[str, Any]:
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if run.code != 0 or not lines:
        raise _fail(what, run, "no result")
    out: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return out


# -- one size ------------------------------------------------------------------------------


@dataclass
class SizeResult:
    n: int
    with_floors: bool = True
    steps: dict[str, Run | str] = field(default_factory=dict)  # str: why it was skipped
    floors: dict[str, Run | str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    status: list[Run] = field(default_factory=list)

    @property
    def done(self) -> set[str]:
        return {step for step, run in self.steps.items() if _done(run)}


def _spec_yaml() -> str:
    spec = {
        "store": "sqlite:///retrainer.db",
        "artifacts": "artifacts",
        "models": {
            MODEL: {
                "task": "classification",
                "target": TARGET,
                "id_column": ID,
                "time_column": TIME,
                "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
                "family": "lightgbm",
                "training": {"holdout_fraction": HOLDOUT, "seed": 0},
                "validation": {"scheme": "holdout"},
            }
        },
    }
    return json.dumps(spec, indent=2)  # JSON is YAML


def _check(step: str, body: Any, n: int, done: set[str]) -> None:
    """Fail unless a step's JSON says it did the whole job (``done``: the steps before it that
    finished)."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise RuntimeError(f"retrainer {step}: {what}; its JSON: {json.dumps(body)[:1500]}")

    if step == "ingest":
        need((body["inserted"], body["rejected"]) == (n, 0), f"expected {n} inserted, 0 rejected")
    elif step == "train":
        need(body["deployed"] is True and body["rows"] == n, f"expected deployed on {n} rows")
    elif step == "predict":
        need(body["rows"] == n, f"expected {n} predictions")
    elif step == "feedback":
        got = (body["received"], body["matched"], body["rejected"], body["training_rows_added"])
        need(got == (n, n, 0, n), f"expected {n} received, matched and added, 0 rejected")
    elif step == "monitor":
        live = [v for v in body["versions"] if v["arm"] == "champion"]
        scored = n if "predict" in done else 0
        if scored:
            need(len(live) == 1 and live[0]["predictions"] == n, f"expected {n} predictions")
        if "feedback" in done:
            need(live[0]["labelled"] == n, f"expected {n} labelled predictions")
    elif step == "drift":
        features = {f["feature"] for f in body}
        need(features == {*NUMERIC, *CATEGORICAL}, "expected one row per feature")
    elif step == "maintain":
        need(body["dry_run"] is True and bool(body["action"]), "expected a dry-run decision")
    elif step == "status":
        rows = n * (2 if "feedback" in done else 1)
        need(body["champion"] is not None, "expected a champion")
        need(body["training_rows"] == rows, f"expected {rows} training rows")


def _recipe(ws: Path, out: Path, cli: list[str], timeout: float) -> dict[str, Any]:
    """What the train and predict floors reproduce, from the registry and the artifact."""
    run = timed([*cli, "versions", MODEL, "--detail", "--json"], ws, timeout, out / "versions")
    champion = next(v for v in _json("retrainer versions", run) if v["role"] == "champion")
    artifact = str(ws / "artifacts" / champion["artifact_uri"])  # relative to the artifacts folder
    with zipfile.ZipFile(artifact) as z:
        model_txt = z.read("model.txt").decode()
    trees = sum(1 for line in model_txt.splitlines() if line.startswith("Tree="))
    return {
        "numeric": NUMERIC,
        "categorical": CATEGORICAL,
        "target": TARGET,
        "params": champion["params"],
        "seed": 0,
        "holdout_fraction": HOLDOUT,
        "early_stop_fraction": EARLY_STOP,
        "rounds": trees,  # binary objective: one tree per round
        "artifact": artifact,
        "version": champion["version"],
    }


def _store_bytes(ws: Path) -> dict[str, int]:
    """Every file of the workspace but the spec and the artifacts: the SQLite files today."""
    found = {}
    for p in sorted(ws.rglob("*")):
        rel = p.relative_to(ws)
        if p.is_file() and rel.parts[0] not in ("artifacts", "retrainer.yaml"):
            found[str(rel)] = p.stat().st_size
    return found


def run_size(n: int, quick: bool, status_runs: int, with_floors: bool) -> SizeResult:
    """The steps (and their floors) in a fresh workspace for ``n`` rows, then ``status``."""
    timeout, env = TIMEOUT[quick], QUICK_ENV if quick else {}
    data = data_for(n, timeout)
    cli = [str(Path(sys.executable).parent / "retrainer"), "-c", "retrainer.yaml"]
    res = SizeResult(n, with_floors)
    with tempfile.TemporaryDirectory(dir=WORK, prefix=f"scale-{n}-") as tmp:
        ws, out = Path(tmp) / "ws", Path(tmp) / "out"
        ws.mkdir()
        out.mkdir()
        (ws / "retrainer.yaml").write_text(_spec_yaml())
        scored = out / "scored.csv"
        args = {
            "ingest": [str(data / "rows.csv")],
            "train": ["--deploy"],
            "predict": [str(data / "score.csv"), "--out", str(scored)],
            "feedback": [str(data / "actuals.csv")],
            "maintain": ["--dry-run"],
        }
        floors = {
            "ingest": [data / "rows.csv", out / "rows.parquet"],
            "train": [out / "rows.parquet", out / "recipe.json"],
            "predict": [data / "score.csv", out / "recipe.json", out / "floor-scored.csv"],
            "feedback": [data / "actuals.csv", scored, out / "floor-feedback.parquet"],
        }
        for step in STEPS:
            need = NEEDS.get(step)
            if need is not None and need not in res.done:
                res.steps[step] = f"skipped: {need} did not finish"
            else:
                print(f"   scale n={n:,}: retrainer {step}", file=sys.stderr, flush=True)
                cmd = [*cli, step, MODEL, *args.get(step, []), "--json"]
                run = res.steps[step] = timed(cmd, ws, timeout, out / step, env)
                if run.finished:
                    _check(step, _json(f"retrainer {step}", run), n, res.done)
            if step == "train" and _done(res.steps[step]):
                res.facts["recipe"] = _recipe(ws, out, cli, timeout)
                (out / "recipe.json").write_text(json.dumps(res.facts["recipe"]))
            if step == "ingest":
                res.facts["store_ingest"] = _store_bytes(ws)
            if step == "feedback":
                res.facts["store"] = _store_bytes(ws)
            if step in FLOORS and with_floors:
                res.floors[step] = _floor(res, step, floors[step], out, env)
        if _done(res.floors.get("predict")) and _done(res.steps.get("predict")):
            compare = [sys.executable, "-m", "bench.scale_floor", "compare"]
            check = timed([*compare, str(scored), *floors["predict"][2:]], REPO, timeout, out)
            res.facts["predict_check"] = _result("floor compare", check)
        for name in ("rows.parquet", "floor-feedback.parquet"):
            if (out / name).exists():
                res.facts[name] = (out / name).stat().st_size
        if status_runs and _done(res.steps.get("train")):
            for _ in range(status_runs):
                run = timed([*cli, "status", MODEL, "--json"], ws, timeout, out / "status", env)
                _check("status", _json("retrainer status", run), n, res.done)
                res.status.append(run)
    return res


def _done(run: Run | str | None) -> bool:
    return isinstance(run, Run) and run.finished


def _floor(
    res: SizeResult, step: str, paths: list[Path], out: Path, env: Mapping[str, str]
) -> Run | str:
    """One floor process, unless what it reads is missing (a step before did not finish)."""
    missing = [p.name for p in paths[:-1] if not p.exists()]
    if missing:
        return f"skipped: no {', '.join(missing)}"
    print(f"   scale n={res.n:,}: floor {step}", file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "bench.scale_floor", step, *map(str, paths)]
    run = timed(cmd, REPO, TIMEOUT[False], out / f"floor-{step}", env)
    if run.finished:
        result = _result(f"floor {step}", run)
        if result["rows"] != res.n:
            raise RuntimeError(f"floor {step}: {result['rows']} rows, expected {res.n}")
        res.facts[f"floor_{step}"] = result
    return run


def startup(command: list[str], runs: int) -> list[Run]:
    with tempfile.TemporaryDirectory(dir=WORK, prefix="scale-startup-") as tmp:
        return [timed(command, REPO, 120, Path(tmp)) for _ in range(runs)]
