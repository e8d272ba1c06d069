"""SIGKILL an ingest and a feedback run in the middle of their transaction (after a random
number of their chunks are written): none of that run's rows is visible, on SQLite and on
PostgreSQL; the run repeated afterwards stores them all."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from retrainer.core.spec import load_spec
from retrainer.lifecycle.feedback import feedback_file
from retrainer.lifecycle.ingest import ingest_file, ingest_frame
from retrainer.lifecycle.predict import predict_file
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

pytestmark = pytest.mark.slow

MODEL = "weather"
CHUNK = 400

# The child runs the real operation with small chunks and writes a line to PROGRESS after
# each chunk it has written into the (still open) transaction, so the parent can kill it at
# a chosen chunk instead of after a guessed delay.
CHILD = textwrap.dedent(
    """
    import os, sys
    from retrainer.core.spec import load_spec
    from retrainer.plumbing.workspace import Workspace
    from retrainer.store.rows import RowsStore
    from retrainer.store.feedback import FeedbackStore

    progress = open(os.environ["PROGRESS"], "a")

    def mark(fn):
        def wrapped(*a, **k):
            out = fn(*a, **k)
            progress.write("chunk\\n")
            progress.flush()
            os.fsync(progress.fileno())
            return out
        return wrapped

    what, path = sys.argv[1], sys.argv[2]
    if what == "ingest":
        from retrainer.lifecycle.ingest import ingest_file as run
        RowsStore.append_rows = mark(RowsStore.append_rows)
    else:
        from retrainer.lifecycle.feedback import feedback_file as run
        FeedbackStore.append_actuals = mark(FeedbackStore.append_actuals)
    with Workspace(load_spec(os.environ["RETRAINER_CONFIG"])) as ws:
        run(ws, "weather", path, chunk_rows=int(os.environ["CHUNK"]))
    progress.write("done\\n")
    """
)


def _kill_mid_run(tmp_path: Path, cfg: Path, what: str, path: Path, chunks: int, at: int) -> None:
    progress = tmp_path / f"progress-{what}-{at}"
    progress.write_text("")
    env = {**os.environ, "RETRAINER_CONFIG": str(cfg), "PROGRESS": str(progress)}
    env["CHUNK"] = str(CHUNK)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, what, str(path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120  # generous: the child needs a few seconds at most
    while progress.read_text().count("chunk") < at:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, f"the {what} child wrote no chunk {at} in 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert "done" not in progress.read_text()  # killed inside the transaction
    assert at < chunks


def test_sigkill_during_ingest_and_feedback_leaves_none_of_the_run(
    store_url: str,
    config_file: Callable[..., Path],
    tmp_path: Path,
    weather_df: pd.DataFrame,
) -> None:
    cfg = config_file(store=store_url)
    rng = random.Random(13)
    base = weather_df[weather_df["date"] < "1952-01-01"]
    rows = weather_df[(weather_df["date"] >= "1952-01-01") & (weather_df["date"] < "1958-01-01")]
    rows_file = tmp_path / "rows.csv"
    rows.to_csv(rows_file, index=False)
    chunks = -(-len(rows) // CHUNK)
    with Workspace(load_spec(cfg, environ={})) as ws:
        ingest_frame(ws, MODEL, base)
        before = ws.store.training_stats(MODEL)[0]
    for at in sorted(rng.sample(range(1, chunks), 2)):
        _kill_mid_run(tmp_path, cfg, "ingest", rows_file, chunks, at)
        with Workspace(load_spec(cfg, environ={})) as ws:
            assert ws.store.training_stats(MODEL)[0] == before
    with Workspace(load_spec(cfg, environ={})) as ws:
        assert ingest_file(ws, MODEL, rows_file, chunk_rows=CHUNK).inserted == len(rows)
        train(ws, MODEL, deploy=True)
        scored = tmp_path / "score.csv"
        later = weather_df[weather_df["date"] >= "1958-01-01"].head(3000)
        later.drop(columns=["rain"]).to_csv(scored, index=False)
        predict_file(ws, MODEL, scored, tmp_path / "out.csv")
        trained = ws.store.training_stats(MODEL)[0]
    actuals = tmp_path / "actuals.csv"
    later[["day_id", "date", "rain"]].to_csv(actuals, index=False)
    chunks = -(-len(later) // CHUNK)
    for at in sorted(rng.sample(range(1, chunks), 2)):
        _kill_mid_run(tmp_path, cfg, "feedback", actuals, chunks, at)
        with Workspace(load_spec(cfg, environ={})) as ws:
            assert ws.store.count_actuals(MODEL) == 0
            assert ws.store.training_stats(MODEL)[0] == trained
    with Workspace(load_spec(cfg, environ={})) as ws:
        r = feedback_file(ws, MODEL, actuals, chunk_rows=CHUNK)
        assert (r.matched, r.training_rows_added) == (len(later), len(later))
        assert ws.store.count_actuals(MODEL) == len(later)
