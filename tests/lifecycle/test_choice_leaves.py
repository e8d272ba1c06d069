"""A regression retrain also chooses its leaf model: constant leaves, or a linear model of the
numeric features in each leaf (LightGBM's linear_tree), by the same holdout and bootstrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from daily_rows import choice_workspace, two_a_day

from retrainer.core.errors import CapabilityError, ConfigError
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

DAYS = 3 * 365


def _smooth(n_days: int = DAYS, seed: int = 0) -> pd.DataFrame:
    """Two rows a day; y is a smooth (linear) function of x0 and x1, which trees of constant
    leaves approximate in steps."""
    rng = np.random.default_rng(seed)
    n = 2 * n_days
    x = rng.random((n, 3))
    return two_a_day(x, 10 * x[:, 0] + 5 * x[:, 1] + rng.normal(0, 0.1, n))


def _workspace(tmp_path: Path, family: str = "lightgbm", **model: Any) -> Workspace:
    """A regression of ``y`` on ``x0..x2`` with ``family`` (see ``choice_workspace``)."""
    params = (
        {"num_threads": 1, "n_estimators": 60}
        if family == "lightgbm"
        else {"n_estimators": 20, "n_jobs": 1}
    )
    keys = {"task": "regression", "family": family, "params": params, **model}
    return choice_workspace(tmp_path, **keys)


def test_linear_leaves_are_chosen_where_the_holdout_says_so_and_the_version_keeps_them(
    tmp_path: Path,
) -> None:
    with _workspace(tmp_path) as ws:
        ingest_frame(ws, "m", _smooth())
        v = train(ws, "m", deploy=True).version
        choice = v.details["training_choice"]
        leaves = [(c["leaves"], c.get("skipped")) for c in choice["candidates"]]
        assert leaves[-1] == ("linear", None), choice
        assert choice["chosen"]["leaves"] == "linear", choice
        assert choice["chosen"]["p_value"] < 0.05
        assert v.params["linear_tree"] is True  # the recipe, recorded on the version
        model = ws.load("m", v.version)
        assert model.runtime_params["linear_tree"] is True
        assert "is_linear=1" in model.booster_.model_to_string()  # type: ignore[attr-defined]
        X = _smooth(30, seed=1)
        err = np.abs(model.predict(X[["x0", "x1", "x2"]]) - X["y"]).mean()
        assert err < 0.3, err  # constant leaves of 60 rounds err by about 0.5 here
        # a fine-tune continues the linear trees
        ingest_frame(ws, "m", _smooth(DAYS + 120, seed=2).iloc[2 * DAYS :])
        tuned = fine_tune(ws, "m", force=True).version
        assert tuned is not None and tuned.params["linear_tree"] is True
        assert "is_linear=1" in ws.load("m", tuned.version).booster_.model_to_string()  # type: ignore[attr-defined]
        # the next full retrain reuses the window and weighting (training.choice.every), and
        # chooses its leaves again on them
        again = train(ws, "m").version.details["training_choice"]
    assert again["reused_from"] == v.version
    assert [(c["window"], c["leaves"]) for c in again["candidates"]] == [
        (choice["chosen"]["window"], "constant"),
        (choice["chosen"]["window"], "linear"),
    ]
    assert again["chosen"]["leaves"] == "linear"


def test_a_family_without_linear_leaves_skips_the_candidate_and_says_so(tmp_path: Path) -> None:
    with _workspace(tmp_path, family="randomforest") as ws:
        ingest_frame(ws, "m", _smooth(400))
        v = train(ws, "m").version
    choice = v.details["training_choice"]
    last = choice["candidates"][-1]
    assert last["leaves"] == "linear"
    assert last["skipped"] == "the randomforest family has no linear leaves"
    assert choice["chosen"]["leaves"] == "constant"
    assert "linear_tree" not in v.params


def test_classification_tries_constant_leaves_only_unless_asked(tmp_path: Path) -> None:
    frame = _smooth(400)
    frame["y"] = (frame["y"] > 7.5).astype(int)
    with _workspace(tmp_path, task="classification") as ws:
        ingest_frame(ws, "m", frame)
        v = train(ws, "m").version
    assert {c["leaves"] for c in v.details["training_choice"]["candidates"]} == {"constant"}


def test_bad_leaves_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.choice\.leaves") as err:
        _workspace(tmp_path, training={"choice": {"leaves": []}})
    assert "[constant, linear]" in str(err.value)
    with pytest.raises(ConfigError, match=r"training\.choice\.leaves") as err:
        _workspace(tmp_path, training={"choice": {"leaves": ["constant", "cubic"]}})
    assert "cubic" in str(err.value)


def test_linear_leaves_cannot_be_compiled_and_the_error_says_what_to_do() -> None:
    pytest.importorskip("onnxmltools")
    from retrainer.families.compiled import compile_model
    from retrainer.families.lightgbm_family import LightGBMModel

    X = pd.DataFrame({"x": np.arange(200.0)})
    m = LightGBMModel("regression", ["x"], params={"n_estimators": 10, "linear_tree": True})
    m.fit(X, X["x"] * 2)
    with pytest.raises(CapabilityError, match=r"serving\.backend: native"):
        compile_model(m)


def test_a_model_served_by_onnx_tries_constant_leaves_only(tmp_path: Path) -> None:
    """Linear leaves cannot be compiled: by default an onnx-served regression does not try
    them, and asking for them with serving.backend onnx is a spec error naming both keys."""
    with _workspace(tmp_path, serving={"backend": "onnx"}) as ws:
        ingest_frame(ws, "m", _smooth(400))
        v = train(ws, "m").version
    assert {c["leaves"] for c in v.details["training_choice"]["candidates"]} == {"constant"}
    with pytest.raises(ConfigError, match=r"serving\.backend: native") as err:
        _workspace(
            tmp_path,
            serving={"backend": "onnx"},
            training={"choice": {"leaves": ["constant", "linear"]}},
        )
    assert "training.choice.leaves" in str(err.value)
