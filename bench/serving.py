"""Serving benchmark: retrainer's server against a bare FastAPI app, MLflow and in-process predict.

One LightGBM regressor (200 trees, 31 leaves, 20 numeric features, trained by retrainer on
seeded data) is served four ways on this machine, each by one server process and loaded with
the same ``wrk`` runs (POST bodies from a Lua script): the bare FastAPI + uvicorn app of
:mod:`bench.serving_bare_app` (the HTTP floor), ``retrainer serve`` with prediction logging on
and off, and ``mlflow models serve`` (its own venv, ``.bench-venv-mlflow``, created here when
missing) on the same booster logged with ``mlflow.lightgbm``. In-process ``booster.predict``
on a float matrix and on a DataFrame is the floor under all of them. Every server's answer to
the 100-row body is checked against in-process predictions before it is loaded. All servers
run side by side and the cells are interleaved (each cell on each server in turn), so a change
in the shared machine's background load falls on every server alike.

Worker (MLflow venv): ``python -m bench.serving mlflow-log MODEL_TXT FOLDER``. This module must
import without retrainer, which that venv lacks: functions import what they need.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .common import REPO, WORK, emit, ensure_venv, run_worker, table, venv_versions

SEED = 20261124
MODEL = "serving"
FEATURES = [f"x{i:02d}" for i in range(20)]
TRAIN_ROWS = 20_000
BATCHES = (1, 100)
CONCURRENCY = (1, 8, 32)
FULL_SECONDS, QUICK_SECONDS = 3, 1  # per cell and round
FULL_ROUNDS, QUICK_ROUNDS = 3, 1  # sweeps over every cell; each cell reports the median
PARAMS = {"n_estimators": 200, "num_leaves": 31}

MLFLOW_VENV = REPO / ".bench-venv-mlflow"
MLFLOW_REQUIRES = {"mlflow": "3.17.2", "lightgbm": "4.7.0"}  # 3.18 is not on the mirror
PYSPY_VENV = REPO / ".bench-venv-pyspy"
PYSPY_REQUIRES = {"py-spy": "0.4.3"}
PROFILE_SECONDS = 6

# How `retrainer serve` is told to log predictions or not.
LOG_FLAG = {"on": "--log", "off": "--no-log"}

# Targets for retrainer with logging on.
MIN_VS_BARE, MAX_P50_OVER_BARE_MS, MIN_ON_VS_OFF = 0.7, 0.3, 0.8


# ---------------------------------------------------------------- data and model


def _frame(rows: int, part: int) -> pd.DataFrame:
    """Seeded rows: 20 standard-normal features and a smooth nonlinear target with noise."""
    rng = np.random.default_rng([SEED, part])
    X = rng.normal(size=(rows, len(FEATURES))).round(4)
    w = np.linspace(-1.0, 1.0, len(FEATURES))
    y = 2 * np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * X[:, 3] ** 2 + X @ w * 0.3
    y += rng.normal(0.0, 0.3, rows)
    df = pd.DataFrame(X, columns=FEATURES)
    df.insert(0, "id", [f"r{part}-{i}" for i in range(rows)])
    df.insert(1, "ts", pd.date_range("2026-01-01", periods=rows, freq="min"))
    df["y"] = y
    return df


def request_rows(n: int) -> list[dict[str, float]]:
    """The rows of an n-row request body (unseen by training)."""
    return _frame(max(BATCHES), part=1)[FEATURES].head(n).to_dict("records")  # type: ignore[return-value]


def spec_dict(folder: Path, logging: str) -> dict[str, Any]:
    """The spec; each logging mode has its own store (a copy), so logged rows can be counted."""
    return {
        "store": f"sqlite:///{folder / f'retrainer-{logging}.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {
            MODEL: {
                "task": "regression",
                "target": "y",
                "id_column": "id",
                "time_column": "ts",
                "features": {"numeric": FEATURES, "categorical": []},
                "family": "lightgbm",
                "params": PARAMS,
                "training": {"seed": 0},
            }
        },
    }


def write_config(folder: Path, logging: str) -> Path:
    import yaml

    path = folder / f"retrainer-logging-{logging}.yaml"
    path.write_text(yaml.safe_dump(spec_dict(folder, logging), sort_keys=False))
    return path


def build_workspace(folder: Path) -> dict[str, Any]:
    """Ingest the training rows, train and deploy the champion; save its booster as text."""
    from retrainer.core.spec import load_spec
    from retrainer.lifecycle.ingest import ingest_frame
    from retrainer.lifecycle.train import train
    from retrainer.plumbing.workspace import Workspace

    config = write_config(folder, "on")
    with Workspace(load_spec(config, environ={})) as ws:
        ingest_frame(ws, MODEL, _frame(TRAIN_ROWS, part=0))
        result = train(ws, MODEL, deploy=True)
        if not result.deployed:
            raise RuntimeError(f"retrainer did not deploy version {result.version.version}")
        booster = ws.load(MODEL, result.version.version).booster_  # type: ignore[attr-defined]
    text = booster.model_to_string()
    (folder / "model.txt").write_text(text)
    shutil.copyfile(folder / "retrainer-on.db", folder / "retrainer-off.db")
    write_config(folder, "off")
    return {"version": result.version.version, "trees": booster.num_trees(), "model": text}


def predicted_rows(folder: Path, logging: str) -> int:
    """Rows in the prediction log of the store that the ``logging`` server uses."""
    from retrainer.core.spec import load_spec
    from retrainer.plumbing.workspace import Workspace

    with Workspace(load_spec(folder / f"retrainer-logging-{logging}.yaml", environ={})) as ws:
        return ws.store.count_predictions(MODEL)


# ---------------------------------------------------------------- in-process floor


def in_process(model: str, quick: bool) -> list[dict[str, Any]]:
    """Per-call wall time of ``booster.predict`` (one thread) on a matrix and a DataFrame."""
    import lightgbm as lgb

    booster = lgb.Booster(model_str=model)
    out = []
    for n in BATCHES:
        frame = pd.DataFrame(request_rows(n), columns=FEATURES)
        matrix = frame.to_numpy(dtype=np.float64)
        for label, X in (("numpy", matrix), ("pandas DataFrame", frame)):
            calls = (300 if quick else 3000) if n == 1 else (100 if quick else 1000)
            for _ in range(calls // 10):  # warm-up
                booster.predict(X, num_threads=1)
            times = []
            for _ in range(calls):
                started = time.perf_counter_ns()
                booster.predict(X, num_threads=1)
                times.append(time.perf_counter_ns() - started)
            times.sort()
            out.append(
                {
                    "server": f"in-process `booster.predict` ({label})",
                    "rows": n,
                    "concurrency": "–",
                    "rps": 1e9 / statistics.fmean(times),
                    "p50_ms": times[len(times) // 2] / 1e6,
                    "p99_ms": times[int(len(times) * 0.99)] / 1e6,
                    "requests": calls,
                }
            )
    return out


# ---------------------------------------------------------------- wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
_LAT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)


def parse_wrk(text: str) -> dict[str, Any]:
    """Throughput, latency percentiles (ms) and errors from ``wrk --latency`` output.

    >>> out = '''  Latency Distribution
    ...      50%  245.00us
    ...      75%  300.00us
    ...      90%  400.00us
    ...      99%    1.20ms
    ...   17500 requests in 5.00s, 2.10MB read
    ...   Non-2xx or 3xx responses: 3
    ... Requests/sec:   3500.12
    ... '''
    >>> r = parse_wrk(out)
    >>> r["rps"], r["p50_ms"], r["p99_ms"], r["requests"], r["errors"]
    (3500.12, 0.245, 1.2, 17500, 3)
    """
    lat = {int(p): float(v) * _UNITS[u] for p, v, u in _LAT.findall(text)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    count = re.search(r"(\d+) requests in", text)
    if rps is None or count is None or 50 not in lat or 99 not in lat:
        raise RuntimeError(f"Could not read wrk's output:\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx[1]) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {
        "rps": float(rps[1]),
        "p50_ms": lat[50],
        "p90_ms": lat.get(90),
        "p99_ms": lat[99],
        "requests": int(count[1]),
        "errors": errors,
    }


def lua_script(folder: Path, body: bytes, name: str) -> Path:
    """A wrk script that POSTs ``body`` (read from a file next to it) as JSON."""
    body_path = folder / f"{name}.json"
    body_path.write_bytes(body)
    script = folder / f"{name}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = assert(io.open("{body_path}", "rb"))\n'
        'wrk.body = f:read("*a")\n'
        "f:close()\n"
    )
    return script


def wrk_argv(url: str, script: Path, concurrency: int, duration: int) -> list[str]:
    threads = 1 if concurrency == 1 else 2
    return [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(concurrency),
        "-d",
        f"{int(duration)}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def run_wrk(url: str, script: Path, concurrency: int, duration: int) -> dict[str, Any]:
    argv = wrk_argv(url, script, concurrency, duration)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return parse_wrk(proc.stdout)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (Debian package)", file=sys.stderr, flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and `apt-get install -y wrk` did not install it")
    return found


def wrk_version() -> str:
    proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    first = (proc.stdout or proc.stderr).splitlines()[:1]
    return first[0].split(" Copyright")[0] if first else "wrk"


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server under test: how to start it, where to POST, and how its bodies look."""

    label: str
    argv: list[str]
    url: str
    body: Callable[[list[dict[str, float]]], bytes]
    answer: Callable[[Any], list[float]]
    scripts: dict[int, Path]
    cwd: Path = REPO
    env: dict[str, str] = field(default_factory=dict)
    startup_seconds: float = 120

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z]+", "-", self.label.lower()).strip("-")


def _post(url: str, body: bytes, timeout: float = 5) -> Any:
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@contextlib.contextmanager
def running(server: Server, log: Path, expected: np.ndarray) -> Iterator[subprocess.Popen[bytes]]:
    """Start the server, wait until its answer to the 100-row body matches ``expected``."""
    body = server.body(request_rows(len(expected)))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            server.argv,
            cwd=server.cwd,
            env={**os.environ, **server.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its children stop with it
        )
    try:
        deadline = time.monotonic() + server.startup_seconds
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server.label} exited ({proc.returncode}):\n{_tail(log)}")
            try:
                got = np.asarray(server.answer(_post(server.url, body)), dtype=np.float64)
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 503 and time.monotonic() < deadline:  # not ready yet
                    time.sleep(0.25)
                    continue
                raise RuntimeError(
                    f"{server.label} answered {exc.code}: {exc.read()[:500]!r}\n{_tail(log)}"
                ) from exc
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{server.label} did not answer in {server.startup_seconds:.0f} s:\n"
                        f"{_tail(log)}"
                    ) from None
                time.sleep(0.25)
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-9, atol=1e-9):
            raise RuntimeError(
                f"{server.label} predicts other values than the in-process booster: "
                f"{got[:3]} vs {expected[:3]}"
            )
        yield proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)


def _tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _rows_body(rows: list[dict[str, float]]) -> bytes:
    return json.dumps({"rows": rows}).encode()


def _predictions(answer: Any) -> list[float]:
    return list(answer["predictions"])


def retrainer_answer(answer: Any) -> list[float]:
    """Predictions from retrainer's response (a list of numbers or of {"prediction": x})."""
    preds = answer["predictions"]
    return [p["prediction"] if isinstance(p, dict) else p for p in preds]


def bare_server(folder: Path, scripts: dict[int, Path], parser: str = "json") -> Server:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.serving_bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(
        BARE if parser == "json" else BARE_ORJSON,
        argv,
        f"http://127.0.0.1:{port}/predict",
        _rows_body,
        _predictions,
        scripts,
        env={
            "BENCH_SERVING_MODEL": str(folder / "model.txt"),
            "BENCH_SERVING_FEATURES": ",".join(FEATURES),
            "BENCH_SERVING_JSON": parser,
        },
        startup_seconds=60,
    )


def retrainer_server(folder: Path, logging: str, scripts: dict[int, Path]) -> Server:
    port = free_port()
    exe = str(Path(sys.executable).parent / "retrainer")
    config = write_config(folder, logging)
    argv = [
        exe,
        "-c",
        str(config),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        LOG_FLAG[logging],
    ]
    return Server(
        f"retrainer serve, logging {logging}",
        argv,
        f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict",
        _rows_body,
        retrainer_answer,
        scripts,
        cwd=folder,
        startup_seconds=90,
    )


def mlflow_server(folder: Path, python: str, model_uri: str, scripts: dict[int, Path]) -> Server:
    port = free_port()
    bin_dir = str(Path(python).parent)
    argv = [
        str(Path(bin_dir) / "mlflow"),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    return Server(
        "`mlflow models serve`",
        argv,
        f"http://127.0.0.1:{port}/invocations",
        lambda rows: json.dumps({"dataframe_records": rows}).encode(),
        _predictions,
        scripts,
        cwd=folder,
        env={
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),  # it runs `uvicorn`
            "MLFLOW_TRACKING_URI": _mlflow_tracking(folder),
            "VIRTUAL_ENV": str(Path(bin_dir).parent),
        },
        startup_seconds=180,
    )


def _mlflow_tracking(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def worker_mlflow_log(model_txt: str, folder: str) -> dict[str, Any]:
    """In the MLflow venv: log the booster with ``mlflow.lightgbm`` to a sqlite tracking store."""
    import lightgbm as lgb
    from mlflow.models import infer_signature  # type: ignore[import-not-found]

    import mlflow  # type: ignore[import-not-found]

    where = Path(folder)
    mlflow.set_tracking_uri(_mlflow_tracking(where))
    experiment = mlflow.create_experiment(
        "serving-bench", artifact_location=(where / "mlartifacts").as_uri()
    )
    booster = lgb.Booster(model_file=model_txt)
    sample = pd.DataFrame(request_rows(5), columns=FEATURES)
    signature = infer_signature(sample, booster.predict(sample))
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.lightgbm.log_model(booster, name="model", signature=signature)
    return {"model_uri": info.model_uri, "mlflow": mlflow.__version__}


# ---------------------------------------------------------------- measuring


def measure(
    servers: list[Server],
    quick: bool,
    folder: Path,
    expected: np.ndarray,
    between: Callable[[], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, subprocess.Popen[bytes]], contextlib.ExitStack]:
    """Start every server, then sweep every (batch, concurrency) cell, each on every server in
    turn, a few times; each cell reports its medians over the sweeps. A change in the shared
    machine's background load thus falls on all servers alike. The servers keep running until
    the returned stack is closed."""
    duration = QUICK_SECONDS if quick else FULL_SECONDS
    rounds = QUICK_ROUNDS if quick else FULL_ROUNDS
    levels = (1,) if quick else CONCURRENCY
    stack = contextlib.ExitStack()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    runs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    try:
        for server in servers:
            print(f"   serving: starting {server.label}", file=sys.stderr, flush=True)
            log = folder / f"{server.key}.log"
            procs[server.label] = stack.enter_context(running(server, log, expected))
        for server in servers:
            run_wrk(server.url, server.scripts[1], 1, 1)  # warm-up
        for i in range(rounds):
            for n in BATCHES:
                for c in levels:
                    print(
                        f"   serving round {i + 1}/{rounds}: {n} row(s), c={c}",
                        file=sys.stderr,
                        flush=True,
                    )
                    for server in servers:
                        cell = run_wrk(server.url, server.scripts[n], c, duration)
                        runs.setdefault((server.label, n, c), []).append(cell)
                        if between is not None:
                            between()
    except BaseException:
        stack.close()
        raise
    return [combine(label, n, c, cells) for (label, n, c), cells in runs.items()], procs, stack


def combine(server: str, n: int, c: int, cells: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell over its sweeps: medians of throughput and percentiles, totals, the range.

    >>> a = {"rps": 100.0, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "requests": 300,
    ...      "errors": 0}
    >>> r = combine("s", 1, 1, [a, {**a, "rps": 90.0}, {**a, "rps": 120.0}])
    >>> r["rps"], r["rps_min"], r["rps_max"], r["requests"]
    (100.0, 90.0, 120.0, 900)
    """
    med = {k: statistics.median(x[k] for x in cells) for k in ("rps", "p50_ms", "p99_ms")}
    return {
        "server": server,
        "rows": n,
        "concurrency": c,
        **med,
        "rps_min": min(x["rps"] for x in cells),
        "rps_max": max(x["rps"] for x in cells),
        "rounds": len(cells),
        "requests": sum(x["requests"] for x in cells),
        "errors": sum(x["errors"] for x in cells),
    }


def _cell(rows: list[dict[str, Any]], server: str, n: int, c: int) -> dict[str, Any] | None:
    for r in rows:
        if r["server"] == server and r["rows"] == n and r["concurrency"] == c:
            return r
    return None


ON, OFF, BARE, BARE_ORJSON = (
    "retrainer serve, logging on",
    "retrainer serve, logging off",
    "bare FastAPI + uvicorn",
    "bare FastAPI + uvicorn, orjson",
)


def targets(rows: list[dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    """Each target over the measured cells: worst value, where, met or not."""
    levels = (1,) if quick else CONCURRENCY
    cells = [(n, c) for n in BATCHES for c in levels]
    checks: list[dict[str, Any]] = []

    def worst(
        name: str,
        values: list[tuple[float, str]],
        good: Callable[[float], bool],
        fmt: str,
        bigger_is_better: bool,
    ) -> None:
        if not values:
            checks.append({"target": name, "met": None, "text": "not measured"})
            return
        value, where = min(values) if bigger_is_better else max(values)
        each = ", ".join(f"{fmt.format(v)} ({w})" for v, w in values)
        text = f"worst {fmt.format(value)} at {where}" + (f"; {each}" if len(values) > 1 else "")
        checks.append(
            {"target": name, "met": all(good(v) for v, _ in values), "text": text, "values": values}
        )

    vs_bare, on_off, p50, p50_fast = [], [], [], []
    for n, c in cells:
        on, off, bare = _cell(rows, ON, n, c), _cell(rows, OFF, n, c), _cell(rows, BARE, n, c)
        fast = _cell(rows, BARE_ORJSON, n, c)
        where = f"{n} row{'s' if n > 1 else ''}, c={c}"
        if on and bare:
            vs_bare.append((on["rps"] / bare["rps"], where))
            if c == 1:
                p50.append((on["p50_ms"] - bare["p50_ms"], where))
        if on and fast and c == 1:
            p50_fast.append((on["p50_ms"] - fast["p50_ms"], where))
        if on and off:
            on_off.append((on["rps"] / off["rps"], where))
    worst(
        f"throughput with logging on ≥ {MIN_VS_BARE}× the bare app's (every cell)",
        vs_bare,
        lambda v: v >= MIN_VS_BARE,
        "{:.2f}×",
        True,
    )
    worst(
        f"p50 with logging on ≤ bare + {MAX_P50_OVER_BARE_MS} ms (concurrency 1)",
        p50,
        lambda v: v <= MAX_P50_OVER_BARE_MS,
        "{:+.2f} ms",
        False,
    )
    worst(
        f"p50 with logging on ≤ the orjson bare app's + {MAX_P50_OVER_BARE_MS} ms "
        "(concurrency 1; the same parser on both sides)",
        p50_fast,
        lambda v: v <= MAX_P50_OVER_BARE_MS,
        "{:+.2f} ms",
        False,
    )
    worst(
        f"throughput with logging on ≥ {MIN_ON_VS_OFF}× logging off (every cell)",
        on_off,
        lambda v: v >= MIN_ON_VS_OFF,
        "{:.2f}×",
        True,
    )
    return checks


# ---------------------------------------------------------------- profile


def profile(
    proc: subprocess.Popen[bytes],
    url: str,
    script: Path,
    folder: Path,
    rows: int,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """py-spy (its own venv) samples the server while wrk loads it; collapsed stacks."""
    python = ensure_venv(PYSPY_VENV, PYSPY_REQUIRES)
    pyspy = str(Path(python).parent / "py-spy")
    raw = folder / f"profile-rows-{rows}.txt"
    argv = [
        pyspy,
        "record",
        "--pid",
        str(proc.pid),
        "--duration",
        f"{seconds:g}",
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(raw),
        "--nonblocking",
    ]
    spy = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    try:
        run_wrk(url, script, concurrency, max(1, int(seconds) - 2))
    finally:
        out, _ = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {out.decode(errors='replace')}")
    return summarise_profile(raw.read_text())


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _parse_frame(frame: str) -> tuple[str, str]:
    """``func (pkg/mod.py:12)`` (py-spy shortens paths) -> (``func (pkg/mod.py)``, module path)."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), "?"
    path = m["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        path = path.split(marker, 1)[-1]
    parts = path.split("/")
    return f"{m['func']} ({'/'.join(parts[-2:])})", path


def _package(path: str) -> str:
    return path.split("/", 1)[0].removesuffix(".py")


def _ours(path: str) -> bool:
    """A retrainer frame below the CLI's start-up frames (the console script, `cli/`)."""
    return path.startswith("retrainer/") and not path.startswith("retrainer/cli/")


def summarise_profile(raw: str, top: int = 10) -> dict[str, Any]:
    """Shares of py-spy samples (raw, collapsed stacks): self time per frame and per package of
    the innermost frame, and inclusive time of retrainer's own frames (its CLI excluded).

    >>> raw = "main (a.py:1);handle (retrainer/serving/app.py:9);loads (json/__init__.py:3) 3\\n"
    >>> raw += "main (a.py:1);handle (retrainer/serving/app.py:9) 1\\n"
    >>> p = summarise_profile(raw)
    >>> p["samples"], p["self"][0], p["packages"][0], p["retrainer"][0]
    (4, ('loads (json/__init__.py)', 0.75), ('json', 0.75), ('handle (serving/app.py)', 1.0))
    """
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_parse_frame(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        k = int(count)
        total += k
        own[frames[-1][0]] += k
        packages[_package(frames[-1][1])] += k
        for name in {f for f, path in frames if _ours(path)}:
            ours[name] += k
    if total == 0:
        return {"samples": 0, "self": [], "packages": [], "retrainer": []}

    def shares(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, k / total) for f, k in c.most_common(top)]

    return {
        "samples": total,
        "self": shares(own),
        "packages": shares(packages),
        "retrainer": shares(ours),
    }


# ---------------------------------------------------------------- runner


def peers() -> dict[str, str]:
    found = venv_versions(MLFLOW_VENV)
    return {"mlflow": f"{found['mlflow']} (own venv)"} if "mlflow" in found else {}


def retrainer_serves() -> str | None:
    """Why retrainer's server cannot be measured yet, or None when `retrainer serve` exists."""
    exe = Path(sys.executable).parent / "retrainer"
    proc = subprocess.run(
        [str(exe), "serve", "--help"], capture_output=True, text=True, check=False, cwd=REPO
    )
    if proc.returncode != 0:
        return "`retrainer serve` does not exist yet"
    return None


def source_state() -> str:
    """The commit retrainer's server ran from, and whether ``src/`` had uncommitted changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    return f"commit {head}" + (" plus uncommitted changes under `src/`" if dirty else "")


def run(quick: bool) -> str:
    ensure_wrk()
    WORK.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=WORK, prefix="serving-") as tmp:
        folder = Path(tmp)
        print("   serving: training the model", file=sys.stderr, flush=True)
        built = build_workspace(folder)
        import lightgbm as lgb

        booster = lgb.Booster(model_str=built["model"])
        matrix = np.array([[r[f] for f in FEATURES] for r in request_rows(max(BATCHES))])
        expected = np.asarray(booster.predict(matrix, num_threads=1))
        floor = in_process(built["model"], quick)
        scripts = {n: lua_script(folder, _rows_body(request_rows(n)), f"rows-{n}") for n in BATCHES}
        mlflow_scripts = {
            n: lua_script(
                folder, json.dumps({"dataframe_records": request_rows(n)}).encode(), f"mlflow-{n}"
            )
            for n in BATCHES
        }
        notes: list[str] = []
        servers = [bare_server(folder, scripts), bare_server(folder, scripts, "orjson")]
        missing = retrainer_serves()
        if missing is None:
            servers += [
                retrainer_server(folder, "off", scripts),
                retrainer_server(folder, "on", scripts),
            ]
        else:
            notes.append(f"retrainer's rows are not measured: {missing}.")
        mlflow_version = None
        if not quick:
            python = ensure_venv(MLFLOW_VENV, MLFLOW_REQUIRES)
            logged_model = run_worker(
                ["bench.serving", "mlflow-log", str(folder / "model.txt"), str(folder)],
                python=python,
            )
            mlflow_version = logged_model["mlflow"]
            servers.append(mlflow_server(folder, python, logged_model["model_uri"], mlflow_scripts))
        profiles: dict[str, Any] = {}
        logged: dict[str, int] = {}
        before = {m: predicted_rows(folder, m) for m in ("on", "off")} if missing is None else {}
        # the logging server's writer flushes every 0.2 s: let it finish before the next cell
        rows, procs, stack = measure(servers, quick, folder, expected, lambda: time.sleep(0.3))
        with stack:
            if missing is None:
                time.sleep(1)
                logged = {m: predicted_rows(folder, m) - before[m] for m in ("on", "off")}
                if any(t["met"] is False for t in targets(rows, quick)):
                    on = next(s for s in servers if s.label == ON)
                    for n in BATCHES:
                        print(
                            f"   serving: py-spy on {ON}, {n} row(s)", file=sys.stderr, flush=True
                        )
                        seconds = 3 if quick else PROFILE_SECONDS
                        try:
                            profiles[str(n)] = profile(
                                procs[ON], on.url, on.scripts[n], folder, n, 8, seconds
                            )
                        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                            notes.append(f"py-spy could not profile {ON}: {exc}".strip())
                            break
        requests_on = sum(r["requests"] * r["rows"] for r in rows if r["server"] == ON)
    load_after = os.getloadavg()
    result = {
        "floor": floor,
        "rows": rows,
        "targets": targets(rows, quick) if missing is None else [],
        "profiles": profiles,
        "logged": logged,
        "requests_on": requests_on,
        "trees": built["trees"],
        "mlflow": mlflow_version,
        "missing": missing,
        "source": source_state(),
        "notes": notes,
        "load": (load_before[0], load_after[0]),
        "seconds": time.perf_counter() - started,
    }
    (WORK / f"serving-results{'-quick' if quick else ''}.json").write_text(
        json.dumps(result, default=str)
    )
    return render(result, quick)


# ---------------------------------------------------------------- rendering


def _versus_mlflow(rows: list[dict[str, Any]], levels: tuple[int, ...]) -> str:
    parts = []
    for n in BATCHES:
        ratios = []
        for c in levels:
            on, ml = _cell(rows, ON, n, c), _cell(rows, "`mlflow models serve`", n, c)
            if on and ml:
                ratios.append(f"{on['rps'] / ml['rps']:.1f}×")
        if ratios:
            at = "/".join(map(str, levels))
            parts.append(f"{n} row{'s' if n > 1 else ''} {' / '.join(ratios)} at c={at}")
    return "; ".join(parts)


def _ms(v: float) -> str:
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms" if v < 100 else f"{v:,.0f} ms"


HEADERS = [
    "server",
    "rows/request",
    "concurrency",
    "req/s",
    "req/s range",
    "p50",
    "p99",
    "req/s vs bare",
]


def render(res: dict[str, Any], quick: bool) -> str:
    import lightgbm as lgb

    levels = (1,) if quick else CONCURRENCY
    duration = QUICK_SECONDS if quick else FULL_SECONDS
    rounds = QUICK_ROUNDS if quick else FULL_ROUNDS
    order = [BARE, BARE_ORJSON, OFF, ON, "`mlflow models serve`"]
    bare = {(r["rows"], r["concurrency"]): r for r in res["rows"] if r["server"] == BARE}
    lines = []
    for r in res["floor"]:
        lines.append(
            [
                r["server"],
                r["rows"],
                "in-process",
                f"{r['rps']:,.0f} calls/s",
                "",
                _ms(r["p50_ms"]),
                _ms(r["p99_ms"]),
                "",
            ]
        )
    for n in BATCHES:
        for c in levels:
            for name in order:
                r = _cell(res["rows"], name, n, c)
                if r is None:
                    if name in (ON, OFF) and res["missing"]:
                        lines.append([name, n, c, "not measured", "", "", "", ""])
                    continue
                b = bare.get((n, c))
                ratio = f"{r['rps'] / b['rps']:.2f}×" if b else ""
                rps = f"{r['rps']:,.0f}" + (f" ({r['errors']} errors)" if r["errors"] else "")
                bold = name == ON
                spread = f"{r['rps_min']:,.0f}–{r['rps_max']:,.0f}" if r["rounds"] > 1 else ""
                cells = [name, n, c, rps, spread, _ms(r["p50_ms"]), _ms(r["p99_ms"]), ratio]
                lines.append([f"**{x}**" if bold and x != "" else x for x in cells])
    rev = "retrainer serve"
    out = [
        "## Serving: retrainer's server vs a bare FastAPI app vs MLflow",
        "",
        "```",
        "python -m bench --only serving",
        f"# each cell on each server in turn, {rounds} sweep(s):",
        f"wrk -t 1|2 -c {{{','.join(map(str, levels))}}} -d {duration}s --latency "
        "-s post-body.lua URL",
        "```",
        "",
        f"One LightGBM regressor ({res['trees']} trees, num_leaves 31, {len(FEATURES)} numeric "
        f"features; lightgbm {lgb.__version__}) trained by retrainer on {TRAIN_ROWS:,} seeded "
        f"rows and deployed as champion; every server loads that same booster, and each one's "
        "answer to the 100-row body was checked against in-process predictions before it was "
        f"loaded. Load generator: {wrk_version()} on loopback, one thread at concurrency 1 "
        f"and two above, {duration} s per cell after a 1 s warm-up. Each server is one process; "
        "all run side by side (idle while another is loaded) and each cell runs on each server "
        f"in turn, in {rounds} sweep{'s' if rounds > 1 else ''} over all cells, so background "
        "load on this shared machine falls on all alike. req/s, p50 and p99 are medians over "
        "the sweeps (the range is over the sweeps too). wrk shares the 2 cores with the server.",
        "",
        "- **in-process**: `booster.predict(X, num_threads=1)` on a float matrix and on a "
        "prebuilt DataFrame; per-call wall time (calls/s is 1 / mean).",
        "- **bare FastAPI + uvicorn** (`bench/serving_bare_app.py`, `python -m uvicorn`, access "
        "log off): `json.loads` of the body, a float matrix in feature order, predict on the "
        "event loop. No validation, routing or logging: the HTTP floor. The same app with "
        "`orjson` for the body and the answer (**bare …, orjson**) is the floor for "
        "retrainer's parser: retrainer parses request bodies with orjson.",
        f"- **`{rev} --log`** and **`--no-log`** (prediction logging on and off; one worker, "
        "its defaults otherwise: row validation, routing, the prediction log batched by a "
        "background thread and inserted into SQLite by its writer process), the same "
        "workspace's store copied for each: body "
        f'`{{"rows": [{{feature: value, …}}]}}` to `POST /v1/models/{MODEL}/predict`; '
        f"retrainer at {res['source']}.",
        "- **`mlflow models serve`**"
        + (
            f" (MLflow {res['mlflow']}, own venv, `--env-manager local`, one worker): the "
            "booster logged with `mlflow.lightgbm.log_model` to a sqlite tracking store; the "
            'same rows as `{"dataframe_records": [...]}` to `/invocations`.'
            if res["mlflow"]
            else ": skipped in quick mode."
        ),
        "",
        table(HEADERS, lines),
        "",
    ]
    if res["logged"]:
        on, off = res["logged"].get("on"), res["logged"].get("off")
        out.append(
            f"Prediction log: {on:,} rows written while logging was on (wrk counted "
            f"{res['requests_on']:,} rows in completed requests, plus warm-up, checks and "
            f"profiling), {off:,} while it was off.\n"
        )
    versus = _versus_mlflow(res["rows"], levels)
    if versus:
        out.append(f"retrainer with logging on vs `mlflow models serve`, throughput: {versus}.\n")
    if res["targets"]:
        out.append("Targets (retrainer with logging on):\n")
        for t in res["targets"]:
            verdict = "not measured" if t["met"] is None else "met" if t["met"] else "**missed**"
            out.append(f"- {t['target']}: {t['text']} — {verdict}")
        out.append("")
    elif res["missing"]:
        out.append(
            "Targets (retrainer with logging on ≥ 0.7× the bare app's throughput, p50 ≤ bare "
            "+ 0.3 ms, logging on ≥ 0.8× logging off): not measured — "
            f"{res['missing']}.\n"
        )
    for n, prof in res["profiles"].items():
        out.append(
            f"### Where retrainer's time goes ({n} row{'s' if n != '1' else ''}, c=8, logging on)"
            f"\n\npy-spy, {prof['samples']:,} samples at 250 Hz over every thread, idle "
            "excluded; shares of samples.\n"
        )
        columns = [
            [f"`{f}` {v:.0%}" for f, v in prof["packages"]],
            [f"`{f}` {v:.0%}" for f, v in prof["self"]],
            [f"`{f}` {v:.0%}" for f, v in prof["retrainer"]],
        ]
        depth = max(map(len, columns))
        grid = [[col[i] if i < len(col) else "" for col in columns] for i in range(depth)]
        out.append(
            table(
                ["self time by package", "self time by frame", "inclusive, retrainer frames"], grid
            )
        )
        out.append("")
    out += [f"- {n}" for n in res["notes"]] + ([""] if res["notes"] else [])
    a, b = res["load"]
    out.append(
        f"Load average (1 min) on this {os.cpu_count()}-core machine: {a:.2f} before, "
        f"{b:.2f} after (this run's own load included: wrk and the server under test keep "
        "both cores busy)."
    )
    if quick:
        out.append("\n_Quick mode: concurrency 1 only, 1 s per cell, no MLflow._")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description="one worker")
    parser.add_argument("worker", choices=["mlflow-log"])
    parser.add_argument("model_txt")
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    emit(worker_mlflow_log(args.model_txt, args.folder))


if __name__ == "__main__":
    main()
