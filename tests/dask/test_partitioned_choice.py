"""The training choice (on by default) with the window on the Dask workers: the same
candidates as a local training on the same rows (one decision procedure, choice.decide),
each fitted on the cluster, recency weights computed by the workers, and the choice reused
as a local training reuses it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle import dask_rows
from retrainer.lifecycle.choice import recency_weights
from retrainer.lifecycle.dask_choice import ClusterRows, Recency, mean_decay, weights
from retrainer.lifecycle.dask_rows import Cut, PartitionedWindow
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

pytest.importorskip("distributed")

# A candidate's holdout accuracy, distributed vs local fit: 1,169 rows or fewer, early
# stopping on 117 of them, scored on 292; the distributed fit also varies from run to run
# (which worker holds which partition changes its bins). Seen: up to 0.034 apart.
TOLERANCE = 0.05
YEARS = [1949, 1950, 1951, 1952]
SAME = ("window", "half_life", "start", "rows", "skipped", "half_life_days")


def _workspace(
    make_workspace: Callable[..., Workspace],
    tmp_path: Path,
    engine: str,
    scheduler: str,
    choice: dict[str, Any] | None = None,
    **model: Any,
) -> Workspace:
    training: dict[str, Any] = {  # training.choice: the default unless given
        "window_days": 1500,
        "engine": engine,
        "refit_on_full_window": False,  # the evaluation fits are what is compared here
        **({"choice": choice} if choice else {}),
    }
    if engine == "dask":
        training["scheduler"] = scheduler
    return make_workspace(
        store=f"sqlite:///{tmp_path / f'{engine}.db'}",
        params={"n_estimators": 30, "num_threads": 1},
        training=training,
        **model,
    )


def test_the_default_choice_runs_on_the_partitions_as_it_runs_locally(
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dask_rows, "PARTITION_ROWS", 400)  # a year's segment each
    out = {}
    for engine in ("local", "dask"):
        ws = _workspace(make_workspace, tmp_path, engine, scheduler)
        for year in YEARS:  # one ingest (one segment, one partition) per year
            ingest_frame(ws, "weather", weather_df[weather_df["date"].dt.year == year])
        if engine == "dask":
            assert dask_rows.unsupported(ws, ws.model_spec("weather")) is None
        out[engine] = (ws, train(ws, "weather").version)
    (_, local), (ws, dask) = out["local"], out["dask"]
    assert dask.details["engine"] == {"name": "dask", "partitions": 4}  # read on the workers
    mine, theirs = dask.details["training_choice"], local.details["training_choice"]
    # the local choice also tries the previous label and the time features, which the Dask
    # engine does not compute
    made = ("previous_actual", "time_features")
    timed = [c for c in theirs["candidates"] if any(c.get(k) for k in made)]
    assert len(timed) == 2 and not any(c.get(k) for c in mine["candidates"] for k in made)
    theirs = {**theirs, "candidates": [c for c in theirs["candidates"] if c not in timed]}
    assert [{k: c.get(k) for k in SAME} for c in mine["candidates"]] == [
        {k: c.get(k) for k in SAME} for c in theirs["candidates"]
    ]
    assert mine["holdout_rows"] == theirs["holdout_rows"]
    assert dask.details["window_rows"] == local.details["window_rows"]
    scored = [c for c in mine["candidates"] if "value" in c]
    for a, b in zip(scored, [c for c in theirs["candidates"] if "value" in c], strict=True):
        assert abs(a["value"] - b["value"]) <= TOLERANCE, (a, b)
    # the chosen candidate may differ only where the engines' scores are within tolerance;
    # on these rows every candidate but the first stays within the bootstrap's noise
    assert mine["chosen"]["window"] == theirs["chosen"]["window"] == "all"
    assert (dask.n_rows, dask.train_start) == (local.n_rows, local.train_start)
    assert any(c["half_life"] != "none" for c in scored)  # weighted: see the test below

    again = train(ws, "weather").version  # every: 4 -> the last choice is reused, one fit
    reused = again.details["training_choice"]
    assert again.details["engine"]["name"] == "dask"
    assert reused["reused_from"] == dask.version
    assert [(c["window"], c["half_life"]) for c in reused["candidates"]] == [
        (mine["chosen"]["window"], mine["chosen"]["half_life"])
    ]


def test_a_regression_tries_linear_leaves_on_the_partitions(
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The leaf choice (``training.choice.leaves``) runs on the workers like the window's:
    a linear-leaf candidate is fitted there (LightGBM's distributed ``linear_tree``), and the
    served model has the leaves the choice chose."""
    monkeypatch.setattr(dask_rows, "PARTITION_ROWS", 400)
    features = [f for f in WEATHER_FEATURES if f != "maximum_temperature"]
    ws = _workspace(
        make_workspace, tmp_path, "dask", scheduler, task="regression",
        target="maximum_temperature", features={"numeric": features},
    )  # fmt: skip
    for year in YEARS:
        ingest_frame(ws, "weather", weather_df[weather_df["date"].dt.year == year])
    v = train(ws, "weather").version
    choice = v.details["training_choice"]
    linear = [c for c in choice["candidates"] if c["leaves"] == "linear"]
    assert len(linear) == 1 and "skipped" not in linear[0], choice
    assert np.isfinite(linear[0]["value"]) and linear[0]["cpu_seconds"] > 0
    text = ws.load("weather", v.version).booster_.model_to_string()  # type: ignore[attr-defined]
    assert ("is_linear=1" in text) == (choice["chosen"]["leaves"] == "linear")
    # the previous actual on the holdout, what the policy scales the baseline by, is recorded
    # on this engine too (policy.scale_baseline_by_naive)
    naive = v.details["naive_holdout"]
    assert naive["metric"] == "mae" and naive["rows"] == choice["holdout_rows"]
    assert 0 < naive["value"] < 20, naive  # degrees: a day's change in maximum temperature


@pytest.mark.parametrize("calibration", ["none", "sigmoid"])
def test_walk_forward_folds_run_on_the_partitions_as_they_run_locally(
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    tmp_path: Path,
    calibration: str,
) -> None:
    """Each fold calibrated as locally too (its map fitted on the newest slice of the fold's
    rows, scored by the workers), with ``calibration``."""
    out = {}
    for engine in ("local", "dask"):
        ws = _workspace(
            make_workspace, tmp_path, engine, scheduler,
            choice={"enabled": False}, validation={"scheme": "walk_forward", "folds": 2},
            calibration=calibration,
        )  # fmt: skip
        ingest_frame(ws, "weather", weather_df[weather_df["date"].dt.year.isin(YEARS)])
        out[engine] = train(ws, "weather").version
    dask, local = out["dask"], out["local"]
    assert dask.details["engine"]["name"] == "dask"
    shape = ("fold", "train_rows", "test_rows")
    assert [[f[k] for k in shape] for f in dask.details["folds"]] == [
        [f[k] for k in shape] for f in local.details["folds"]
    ]
    for a, b in zip(dask.details["folds"], local.details["folds"], strict=True):
        assert abs(a["accuracy"] - b["accuracy"]) <= TOLERANCE, (a, b)
    if calibration != "none":
        assert dask.details["calibration"]["method"] == local.details["calibration"]["method"]


def test_the_workers_weigh_rows_as_the_local_choice_does(cluster: Any) -> None:
    import dask.array as da
    import dask.dataframe as dd
    from distributed import Client

    times = pd.date_range("2020-01-01", periods=60, freq="D")
    frame = pd.DataFrame({"event_time": times, "x": np.arange(60.0)})
    window = PartitionedWindow(dd.from_pandas(frame, npartitions=3), ("event_time", "x"), 3)
    lo, hi = Cut(times[10], inclusive=True), Cut(times[50], inclusive=True)
    r = Recency(times[49], 7.5)
    with Client(cluster, set_as_default=False) as client, client.as_current():
        rows_like = da.zeros((40, 2), chunks=((10, 20, 10), (2,)))
        got = weights(window, lo, hi, r, mean_decay(window, lo, hi, r), rows_like).compute()
    assert np.allclose(got, recency_weights(pd.Series(times[10:50]), 7.5), rtol=1e-12)


def test_recency_weights_reach_the_distributed_fit(cluster: Any) -> None:
    """The rule flips halfway through the rows: weighted to the newest (half-life 5 days of
    400), the fit learns the new rule; unweighted, both halves."""
    import dask.dataframe as dd
    from distributed import Client

    from retrainer.families import dask_boosting, family_class
    from retrainer.families.schema import FeatureSchema
    from retrainer.lifecycle.dask_choice import fit_rows
    from retrainer.lifecycle.dask_rows import WindowFacts

    rng = np.random.default_rng(3)
    times = pd.date_range("2020-01-01", periods=400, freq="D")
    x = rng.normal(size=400)
    y = np.where(np.arange(400) < 200, x > 0, x < 0).astype(int)
    frame = pd.DataFrame({"event_time": times, "x": x, "target": y})
    window = PartitionedWindow(dd.from_pandas(frame, npartitions=2), tuple(frame.columns), 2)
    schema = FeatureSchema(("x",), (), {}, {})
    facts = WindowFacts(400, times[0], times[-1], ("x",), (0, 1), {}, {}, (200, 200))
    probe = pd.DataFrame({"x": [-2.0, 2.0]})
    out = {}
    with Client(cluster, set_as_default=False) as client, dask_boosting.using(client):
        for name, recency in (("plain", None), ("recent", Recency(times[-1], 5.0))):
            model = family_class("lightgbm")(
                "classification", ["x"], [], {"n_estimators": 20, "num_threads": 1}, 0
            )
            fitted = fit_rows(window, model, schema, facts, None, None, stop=False,
                              recency=recency)  # fmt: skip
            out[name] = fitted.predict_raw(probe)[:, 1]
    assert out["recent"][0] > 0.8 and out["recent"][1] < 0.2  # the new rule: x < 0 -> 1
    assert abs(out["plain"][0] - out["plain"][1]) < abs(out["recent"][0] - out["recent"][1])


def test_a_holdout_cut_by_time_takes_the_rows_sharing_its_first_time() -> None:
    times = pd.Series(pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-03"]))
    hold = pd.DataFrame({"event_time": times[1:], "x": [1.0, 2.0, 3.0], "target": [0, 1, 0]})
    rows = ClusterRows(None, None, "lightgbm", None, None, times, hold)  # type: ignore[arg-type]
    assert [rows.holdout_rows(n) for n in (1, 2, 3)] == [2, 2, 3]
    assert rows.cut(0) is None and rows.cut(4) is None
    assert rows.cut(2) == Cut(pd.Timestamp("2020-01-03"), inclusive=True)
