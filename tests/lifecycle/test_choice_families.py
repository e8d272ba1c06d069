"""A full retrain also chooses the model family (training.choice.families, default
[linear]): each family is tried on the first window, the champion's first, and another
displaces it only beyond chance; the windows, weightings and time inputs are then tried with
the chosen one, and a reused choice keeps the champion's. A linear version is served by the
real CLI and the REST server like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from backup_craft import run_cli
from daily_rows import choice_spec, two_a_day

from loopback import served
from retrainer.core.errors import CapabilityError, ConfigError
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app

DAYS = 2 * 365
FAMILIES = {"training": {"choice": {"families": ["linear"]}}}


def plane(n_days: int = DAYS, seed: int = 0) -> pd.DataFrame:
    """Two rows a day; ``y`` is which side of the plane x0 + x1 + x2 = 1.5 a row lies on: a
    linear model learns it from few rows, trees in steps."""
    rng = np.random.default_rng(seed)
    x = rng.random((2 * n_days, 3))
    y = x.sum(axis=1) > 1.5
    return two_a_day(x, np.where(y, "yes", "no"))


def chequer(n_days: int = DAYS, seed: int = 0) -> pd.DataFrame:
    """``y``: the squares of a 2x2 chequerboard of x0 and x1, which no plane separates."""
    rng = np.random.default_rng(seed)
    x = rng.random((2 * n_days, 3))
    y = (x[:, 0] > 0.5) ^ (x[:, 1] > 0.5)
    return two_a_day(x, np.where(y, "yes", "no"))


def _workspace(tmp_path: Path, **model: Any) -> Workspace:
    return Workspace(parse_spec(choice_spec(tmp_path, **{**FAMILIES, **model}), environ={}))


def _families(choice: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(c["window"], c.get("family"), c.get("skipped")) for c in choice["candidates"]]


def test_the_linear_family_wins_where_a_plane_splits_the_classes(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        ingest_frame(ws, "m", plane())
        v = train(ws, "m", deploy=True).version
        choice = v.details["training_choice"]
        # both families on the first window, the spec's first; the windows then with linear
        assert _families(choice)[:3] == [
            ("all", None, None),
            ("all", "linear", None),
            ("1/4", "linear", None),
        ], choice
        assert choice["candidates"][1]["p_value"] < 0.05, choice
        assert choice["chosen"]["family"] == "linear", choice
        assert v.family == "linear" and v.version == "1.0.0"
        model = ws.load("m", v.version)
        X = plane(200, seed=1)
        accuracy = (model.predict(X[["x0", "x1", "x2"]]) == X["y"]).mean()
        assert accuracy > 0.9, accuracy
        # the next full retrain reuses the choice and keeps the champion's family: one fit
        ingest_frame(ws, "m", plane(DAYS + 60, seed=2).iloc[2 * DAYS :])
        again = train(ws, "m", deploy=True).version
    reused = again.details["training_choice"]
    assert reused["reused_from"] == v.version
    assert _families(reused) == [(choice["chosen"]["window"], "linear", None)], reused
    assert again.family == "linear"
    assert again.version == "1.1.0"  # the same family and schema: a minor version


def test_the_spec_family_stays_where_no_plane_fits(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        ingest_frame(ws, "m", chequer())
        v = train(ws, "m").version
    choice = v.details["training_choice"]
    linear = choice["candidates"][1]
    assert linear["family"] == "linear" and linear["p_value"] > 0.5, choice
    assert "family" not in choice["chosen"]
    assert v.family == "lightgbm"


def test_a_linear_champion_is_the_base_of_the_next_choice_and_the_spec_family_its_rival(
    tmp_path: Path,
) -> None:
    every = {"training": {"choice": {"families": ["linear"], "every": 1}}}
    with _workspace(tmp_path, **every) as ws:
        ingest_frame(ws, "m", plane())
        first = train(ws, "m", deploy=True).version
        assert first.family == "linear"
        ingest_frame(ws, "m", plane(DAYS + 60, seed=2).iloc[2 * DAYS :])
        v = train(ws, "m").version
    choice = v.details["training_choice"]
    tried = _families(choice)
    # the champion's family first, the spec's second (one fit of it; a candidate of the
    # spec's family records none), then the windows
    assert tried[:3] == [("all", "linear", None), ("all", None, None), ("1/4", "linear", None)]
    assert [f for _, f, _ in tried].count(None) == 1
    assert v.family == "linear"


def test_a_linear_champion_does_not_fine_tune_and_says_to_retrain(tmp_path: Path) -> None:
    with _workspace(tmp_path) as ws:
        ingest_frame(ws, "m", plane())
        train(ws, "m", deploy=True)
        ingest_frame(ws, "m", plane(DAYS + 60, seed=2).iloc[2 * DAYS :])
        with pytest.raises(CapabilityError, match="full retrain"):
            fine_tune(ws, "m", force=True)


def test_families_off_tries_the_spec_family_only(tmp_path: Path) -> None:
    off = {"training": {"choice": {"families": []}}}
    with _workspace(tmp_path, **off) as ws:
        ingest_frame(ws, "m", plane())
        v = train(ws, "m").version
    assert all(f is None for _, f, _ in _families(v.details["training_choice"]))
    assert v.family == "lightgbm"


def test_a_family_the_spec_cannot_serve_is_skipped_and_said_so(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = {**FAMILIES, "serving": {"backend": "onnx"}}
    with _workspace(tmp_path, **onnx) as ws:
        ingest_frame(ws, "m", plane())
        v = train(ws, "m").version
    skipped = _families(v.details["training_choice"])[1]
    assert skipped == ("all", "linear", "serving.backend: onnx cannot compile the linear family")
    assert v.family == "lightgbm"


def test_a_family_named_in_the_spec_is_the_one_trained_unless_families_are_listed(
    tmp_path: Path,
) -> None:
    unset = choice_spec(tmp_path)
    del unset["models"]["m"]["family"]
    unset["models"]["m"]["params"] = {"lightgbm": {"num_threads": 1, "n_estimators": 60}}
    assert parse_spec(unset, environ={}).models["m"].other_families == ["linear"]
    named = parse_spec(choice_spec(tmp_path), environ={}).models["m"]
    assert named.family == "lightgbm" and named.other_families == []
    with Workspace(parse_spec(unset, environ={})) as ws:
        ingest_frame(ws, "m", plane())
        v = train(ws, "m").version
        assert v.family == "linear", v.details["training_choice"]
        # asked for by name (train --family, compare), a family is the one trained
        by_name = train(ws, "m", family="lightgbm").version
    assert by_name.family == "lightgbm"
    assert all(f is None for _, f, _ in _families(by_name.details["training_choice"]))


def test_an_unknown_family_in_the_list_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    bad = {"training": {"choice": {"families": ["linear", "lienar"]}}}
    with pytest.raises(ConfigError, match=r"training\.choice\.families lists 'lienar'"):
        _workspace(tmp_path, **bad)


def _cli_then_server(
    tmp_path: Path, raw: dict[str, Any], rows: pd.DataFrame, fresh: pd.DataFrame
) -> tuple[pd.DataFrame, list[Any], str]:
    """``rows`` ingested and trained (deployed) through the real CLI, ``fresh`` scored by
    `retrainer predict`, then its first 20 rows by the REST server on loopback: the CLI's
    scores, the server's predictions and the champion's family."""
    cfg = tmp_path / "retrainer.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    for args in (("ingest", "m", str(path)), ("train", "m", "--deploy")):
        done = run_cli(cfg, *args)
        assert done.returncode == 0, done.stderr
    src, out = tmp_path / "next.csv", tmp_path / "scored.csv"
    fresh.drop(columns=["y"]).to_csv(src, index=False)
    done = run_cli(cfg, "predict", "m", str(src), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Workspace(parse_spec(raw, environ={})) as ws:
        family = ws.store.get_version("m", ws.store.roles("m").champion or "").family
        app = create_app(ws, log_predictions=False, scheduler=False)
        body = {"rows": fresh.drop(columns=["y"]).head(20).to_dict(orient="records")}
        body["rows"] = [{**r, "t": str(r["t"])} for r in body["rows"]]
        with served(app) as http:
            answer = http.post("/v1/models/m/predict", json=body)
    assert answer.status_code == 200, answer.text
    return pd.read_csv(out), answer.json()["predictions"], family


def test_the_real_cli_and_the_server_score_with_a_linear_version(tmp_path: Path) -> None:
    fresh = plane(100, seed=3)
    raw = choice_spec(tmp_path, **FAMILIES)
    scored, served_rows, family = _cli_then_server(tmp_path, raw, plane(), fresh)
    assert family == "linear"
    assert (scored["prediction"] == fresh["y"]).mean() > 0.85
    assert served_rows == scored["prediction"].head(20).tolist()


BLEND = {
    "task": "regression",
    "training": {"choice": {"families": ["linear"], "leaves": ["constant"], "blend": True}},
}


def sine_ramp(n_days: int = DAYS, seed: int = 1) -> pd.DataFrame:
    """``y``: a steep ramp in x0, which trees learn in steps, plus a wave in x1, which a
    linear model cannot bend to: their errors are apart, so their mean errs less."""
    rng = np.random.default_rng(seed)
    x = rng.random((2 * n_days, 3))
    y = 10 * x[:, 0] + 0.5 * np.sin(6 * x[:, 1]) + rng.normal(0, 0.05, len(x))
    return two_a_day(x, y)


def test_a_blend_of_two_families_wins_where_their_errors_are_apart(tmp_path: Path) -> None:
    with _workspace(tmp_path, **BLEND) as ws:
        ingest_frame(ws, "m", sine_ramp())
        v = train(ws, "m", deploy=True).version
        choice = v.details["training_choice"]
        blend = choice["candidates"][-1]
        assert blend["family"] == "ensemble" and blend["members"] == ["lightgbm", "linear"]
        assert blend["p_value"] < 0.05, choice
        assert choice["chosen"]["members"] == ["lightgbm", "linear"], choice
        assert v.family == "ensemble" and v.version == "1.0.0"
        assert v.params["members"] == ["lightgbm", "linear"]
        model = ws.load("m", v.version)
        assert [m.name for m in model.members_] == ["lightgbm", "linear"]
        X = sine_ramp(200, seed=5)
        mae = {
            "blend": np.abs(model.predict(X[["x0", "x1", "x2"]]) - X["y"]).mean(),
            **{
                m.name: np.abs(m.predict(X[["x0", "x1", "x2"]]) - X["y"]).mean()
                for m in model.members_
            },
        }
        assert mae["blend"] < min(mae["lightgbm"], mae["linear"]), mae
        # the next full retrain reuses the choice: the champion's blend is the incumbent
        ingest_frame(ws, "m", sine_ramp(DAYS + 60, seed=2).iloc[2 * DAYS :])
        again = train(ws, "m", deploy=True).version
    reused = again.details["training_choice"]
    assert reused["reused_from"] == v.version
    held = reused["candidates"][-1]
    assert held["members"] == ["lightgbm", "linear"] and held["held"] is True, reused
    assert again.family == "ensemble"
    assert again.version == "1.1.0"  # the same recipe and schema: a minor version


def test_blend_off_tries_none_and_a_calibrated_classifier_says_why_it_cannot(
    tmp_path: Path,
) -> None:
    off = {**BLEND, "training": {"choice": {"families": ["linear"], "blend": False}}}
    with _workspace(tmp_path / "off", **off) as ws:
        ingest_frame(ws, "m", sine_ramp())
        v = train(ws, "m").version
    assert all(c.get("family") != "ensemble" for c in v.details["training_choice"]["candidates"])
    calibrated = {"calibration": "sigmoid", "training": BLEND["training"]}
    with _workspace(tmp_path / "cal", **calibrated) as ws:
        ingest_frame(ws, "m", chequer())
        v = train(ws, "m").version
    last = v.details["training_choice"]["candidates"][-1]
    assert last["family"] == "ensemble"
    assert last["skipped"] == "calibration: sigmoid maps one model's probabilities, not a blend's"


def test_the_real_cli_and_the_server_score_with_a_blend(tmp_path: Path) -> None:
    fresh = sine_ramp(100, seed=3)
    raw = choice_spec(tmp_path, **BLEND)
    scored, served_rows, family = _cli_then_server(tmp_path, raw, sine_ramp(), fresh)
    assert family == "ensemble"
    assert np.abs(scored["prediction"] - fresh["y"]).mean() < 0.3
    np.testing.assert_allclose(served_rows, scored["prediction"].head(20), rtol=1e-9)
