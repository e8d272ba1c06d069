"""Hyper-parameter search on full retrains (Optuna): seeded, pruned on walk-forward folds,
recorded on the version, asked by the CLI, the spec or the policy's count."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.errors import ConfigError
from retrainer.core.spec import parse_spec
from retrainer.core.spec_sections import Search
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.search import (
    Objective,
    SearchRequest,
    fold_scores,
    make_study,
    p_value,
    run,
)
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

pytest.importorskip("optuna")
pytest.importorskip("lightgbm")

MODEL = {
    "task": "regression",
    "target": "y",
    "id_column": "id",
    "time_column": "t",
    "features": {"numeric": ["x0", "x1"]},
    "family": "lightgbm",
    "params": {"num_threads": 1, "n_estimators": 30, "early_stopping_rounds": 10},
    "training": {"choice": {"enabled": False}},
    "gate": {"min_rows": 10},
}


def _rows(n: int = 480, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "x0": x[:, 0],
            "x1": x[:, 1],
            "y": 3 * x[:, 0] + np.sin(6 * x[:, 1]) + rng.normal(0, 0.1, n),
        }
    )


def _raw(tmp_path: Path, **model: Any) -> dict[str, Any]:
    return {
        "store": f"sqlite:///{tmp_path / 'r.db'}",
        "artifacts": str(tmp_path / "a"),
        "models": {"m": {**MODEL, **model}},
    }


def _spec(tmp_path: Path, **model: Any) -> Any:
    return parse_spec(_raw(tmp_path, **model), environ={}).models["m"]


def _frame() -> pd.DataFrame:
    """The rows as training reads them (target, event_time columns)."""
    f = _rows()
    return f.rename(columns={"y": "target", "t": "event_time", "id": "entity_id"})


def test_the_same_seed_gives_the_same_search(tmp_path: Path) -> None:
    spec, frame = _spec(tmp_path), _frame()
    settings = Search(trials=4, folds=2, seed=7)
    first = run(spec, "lightgbm", frame, settings, "test")[1]
    again = run(spec, "lightgbm", frame, settings, "test")[1]
    assert first["best_params"] == again["best_params"]
    assert [t["params"] for t in first["history"]] == [t["params"] for t in again["history"]]
    other = run(spec, "lightgbm", frame, Search(trials=4, folds=2, seed=8), "test")[1]
    assert [t["params"] for t in other["history"]] != [t["params"] for t in first["history"]]
    assert first["metric"] == "mae" and first["direction"] == "minimize"
    assert sum(first["trials"].values()) == 4 and len(first["history"]) == 4


def test_a_bad_trial_is_pruned_after_its_first_fold(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    objective = Objective(spec, "lightgbm", _frame(), folds=3, pruning=True)
    study = make_study(objective.direction, Search(trials=3, folds=3), seed=0)
    good = {
        "learning_rate": 0.3,
        "num_leaves": 15,
        "min_data_in_leaf": 5,
        "feature_fraction": 1.0,
        "lambda_l2": 0.001,
    }
    study.enqueue_trial(good)
    study.enqueue_trial({**good, "num_leaves": 31})
    # a learning rate 30x lower in 30 rounds barely moves from the mean: far worse
    study.enqueue_trial({**good, "learning_rate": 0.01, "min_data_in_leaf": 100})
    study.optimize(objective, n_trials=3)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"], states
    assert len(study.trials[2].user_attrs["folds"]) == 1  # stopped after its first fold


def test_train_with_search_records_it_and_versions_detail_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _raw(tmp_path, training={"choice": {"enabled": False}, "search": {"folds": 2}})
    with Workspace(parse_spec(raw, environ={})) as ws:
        ingest_frame(ws, "m", _rows())
        v = train(ws, "m", search=SearchRequest(trials=3)).version
    s = v.details["search"]
    assert s["trigger"] == "asked (train --search)"
    assert len(s["history"]) == 3 and s["budget"] == {"trials": 3, "seconds": None}
    assert {d["name"] for d in s["space"]} >= {"learning_rate", "num_leaves"}
    assert s["default_value"] > 0 and s["cpu_seconds"] > 0
    assert v.details["fit_cpu_seconds"] >= s["cpu_seconds"]  # the training's whole cost
    if s["chosen"] == "search":  # the version trains with the chosen params
        assert s["best_value"] < s["default_value"] and s["p_value"] < s["significance"]
        assert {k: v.params[k] for k in s["params"]} == s["params"]
    else:
        assert s["params"] == {}
    config = tmp_path / "retrainer.yaml"
    config.write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    monkeypatch.setenv("COLUMNS", "2000")
    res = runner.invoke(app, ["-c", str(config), "versions", "m", "--detail", "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)[0]["search"]
    assert shown["history"] == s["history"]
    res = runner.invoke(app, ["-c", str(config), "versions", "m", "--detail"])
    assert res.exit_code == 0, res.output
    assert "search (asked (train --search)): lightgbm" in res.output
    assert "trial 2 " in res.output


def test_policy_search_every_searches_on_the_nth_full_retrain(tmp_path: Path) -> None:
    raw = _raw(
        tmp_path,
        training={"choice": {"enabled": False}, "search": {"trials": 2, "folds": 2}},
        policy={"search_every": 2},
    )
    with Workspace(parse_spec(raw, environ={})) as ws:
        ingest_frame(ws, "m", _rows())
        searched = ["search" in train(ws, "m").version.details for _ in range(4)]
        last = ws.store.list_versions("m")[-1]
    assert searched == [False, True, False, True]
    assert last.details["search"]["trigger"].startswith("policy.search_every: 2")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--search", "--trials", "0"], "--trials (training.search.trials)"),
        (["--search", "--trials", "-3"], "--trials (training.search.trials)"),
        (["--search", "--search-seconds", "0"], "--search-seconds"),
        (["--trials", "5"], "add --search"),
    ],
)
def test_a_bad_search_budget_exits_2(tmp_path: Path, args: list[str], named: str) -> None:
    config = tmp_path / "retrainer.yaml"
    config.write_text(yaml.safe_dump(_raw(tmp_path)))
    res = CliRunner().invoke(app, ["-c", str(config), "train", "m", *args], env={"COLUMNS": "2000"})
    assert res.exit_code == 2, res.output
    assert named in " ".join(res.output.split())


def test_a_spec_budget_of_zero_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    bad = _raw(tmp_path, training={"search": {"enabled": True, "trials": 0}})
    config = tmp_path / "retrainer.yaml"
    config.write_text(yaml.safe_dump(bad))
    res = CliRunner().invoke(app, ["-c", str(config), "train", "m"], env={"COLUMNS": "2000"})
    assert res.exit_code == 2, res.output
    assert "training.search.trials" in " ".join(res.output.split())


def test_a_family_without_a_space_is_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path, family="river", params={})
    with pytest.raises(ConfigError, match="no hyper-parameter search space"):
        run(spec, "river", _frame(), Search(trials=2), "test")


def test_without_optuna_a_search_exits_2_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    config = tmp_path / "retrainer.yaml"
    raw = _raw(tmp_path)
    config.write_text(yaml.safe_dump(raw))
    with Workspace(parse_spec(raw, environ={})) as ws:
        ingest_frame(ws, "m", _rows())
    res = CliRunner().invoke(
        app, ["-c", str(config), "train", "m", "--search"], env={"COLUMNS": "2000"}
    )
    assert res.exit_code == 2, res.output
    assert "pip install 'retrainer[search]'" in " ".join(res.output.split())


def test_on_the_dask_engine_trials_run_in_parallel_on_the_workers(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        training = {
            "choice": {"enabled": False},
            "search": {"folds": 2, "seed": 3},
            "engine": "dask",
            "scheduler": cluster.scheduler_address,
            "threads": 1,
        }
        spec, frame = _spec(tmp_path, training=training), _frame()
        from retrainer.lifecycle.search import run_if_asked

        records = []
        for _ in range(2):
            with Workspace(parse_spec(_raw(tmp_path, training=training), environ={})) as ws:
                records.append(run_if_asked(ws, spec, "lightgbm", frame, SearchRequest(5))[1])
    first, again = records
    assert first is not None and again is not None
    assert first["parallel"] == 2 and len(first["history"]) == 5
    assert first["workers_cpu_seconds"] > 0
    assert [t["params"] for t in first["history"]] == [t["params"] for t in again["history"]]
    assert first["best_params"] == again["best_params"]
    local = run(spec, "lightgbm", frame, Search(trials=5, folds=2, seed=3), "test")[1]
    assert local["default_value"] == pytest.approx(first["default_value"])  # same fits


def test_the_best_trial_displaces_the_defaults_only_beyond_chance(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    objective = Objective(spec, "lightgbm", _frame(), folds=2, pruning=True)

    def scores(params: dict[str, Any]) -> list[Any]:
        return [fold_scores(spec, "lightgbm", objective.rows, params, f) for f in objective.folds]

    defaults = scores({})
    assert p_value(objective, defaults, defaults, 200, 0) == 1.0  # no improvement at all
    worse = scores({"learning_rate": 0.01, "min_data_in_leaf": 100})
    assert p_value(objective, worse, defaults, 200, 0) < 0.05  # the defaults beat it plainly


def test_a_budget_in_seconds_alone_ends_the_search(tmp_path: Path) -> None:
    spec, frame = _spec(tmp_path), _frame()
    settings = SearchRequest(seconds=0.2).settings(spec)
    assert (settings.trials, settings.seconds) == (None, 0.2)
    record = run(spec, "lightgbm", frame, settings, "test")[1]
    assert record["budget"] == {"trials": None, "seconds": 0.2}
    assert len(record["history"]) >= 1  # Optuna checks the time after each trial


def test_the_python_api_searches_with_a_budget_and_reports_it_in_brief(tmp_path: Path) -> None:
    import retrainer

    raw = _raw(tmp_path, training={"choice": {"enabled": False}, "search": {"folds": 2}})
    with retrainer.open(raw, environ={}) as rt:
        rt.ingest("m", _rows())
        view = rt.train("m", trials=2).to_dict()
    brief = view["search"]
    assert brief["trigger"] == "asked (train --search)" and sum(brief["trials"].values()) == 2
    assert "history" not in brief  # the whole record is for versions --detail
