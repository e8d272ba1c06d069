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
        # chooses its leaves again on them, the champion's (linear) as the incumbent
        again = train(ws, "m").version.details["training_choice"]
    assert again["reused_from"] == v.version
    tried = [(c["window"], c["leaves"], c.get("held"), c.get("previous_actual"),
              c.get("time_features")) for c in again["candidates"]]  # fmt: skip
    window = choice["chosen"]["window"]
    assert tried == [  # the time inputs are not tried on a reused choice
        (window, "constant", None, None, None),
        (window, "linear", True, None, None),
    ]
    assert again["chosen"]["leaves"] == "linear"


def test_a_family_without_linear_leaves_skips_the_candidate_and_says_so(tmp_path: Path) -> None:
    with _workspace(tmp_path, family="randomforest") as ws:
        ingest_frame(ws, "m", _smooth(400))
        v = train(ws, "m").version
    choice = v.details["training_choice"]
    *_, last, previous, features = choice["candidates"]
    assert previous["previous_actual"] is True and previous["leaves"] == "constant"
    assert features["time_features"] is True
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


class _Fixed:
    """A fitted model that answers the holdout with fixed predictions."""

    task = "regression"

    def __init__(self, pred: np.ndarray) -> None:
        from retrainer.families import family_class

        self.pred = pred
        self.capabilities = family_class("lightgbm").capabilities

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        return self.pred

    def encode_target(self, y: pd.Series) -> np.ndarray:
        return np.asarray(y, dtype=float)


class _Rows:
    """Choice rows whose candidates' holdout errors are set per leaf model: 400 daily rows,
    the newest 100 the holdout."""

    def __init__(self, errors: dict[str, tuple[float, float]], seed: int = 0) -> None:
        """``errors``: per leaf model, the scale of an error all candidates share and of
        one of its own."""
        rng = np.random.default_rng(seed)
        self.y = rng.normal(0, 1, 100)
        shared = rng.normal(0, 1, 100)
        self.noise = {k: a * shared + rng.normal(0, b, 100) for k, (a, b) in errors.items()}
        self.fitted: list[str] = []

    @property
    def times(self) -> pd.Series:
        return pd.Series(pd.date_range("2020-01-01", periods=400, freq="D"))

    @property
    def other_families(self) -> bool:
        return False

    def holdout_rows(self, rows: int) -> int:
        return rows

    def holdout(self, rows: int) -> tuple[pd.DataFrame, pd.Series]:
        return pd.DataFrame({"x0": np.zeros(rows)}), pd.Series(self.y[-rows:])

    def fit(
        self,
        lo: int,
        hi: int,
        half_life: float | None,
        leaves: str = "constant",
        inputs: Any = None,
        family: str | None = None,
    ) -> Any:
        self.fitted.append(leaves)
        return _Fixed(self.y + self.noise[leaves]), None

    def cpu(self) -> float:
        return 0.0


def _decide(rows: _Rows, held: str | None) -> Any:
    from retrainer.core.spec import parse_spec
    from retrainer.lifecycle.choice import Incumbent, decide

    model = {
        "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
        "features": {"numeric": ["x0"]},
        "training": {"choice": {"windows": ["all"], "half_lives": ["none"]}},
    }  # fmt: skip
    spec = parse_spec({"store": "sqlite:///unused.db", "models": {"m": model}}, environ={})
    return decide(spec.models["m"], "lightgbm", rows, 100, None, Incumbent(leaves=held))[2]


def test_the_champions_leaf_model_is_the_incumbent_of_the_leaf_choice() -> None:
    """Tried after the windows, the champion's leaf model is chosen unless the candidate
    chosen before it (the first listed, constant) is better beyond chance."""
    # constant a little better, not beyond chance: the champion's linear leaves stay
    close = _decide(_Rows({"constant": (0.5, 0.0), "linear": (0.5, 0.05)}), held="linear")
    assert close.chosen.leaves == "linear" and close.chosen.held is True
    assert close.chosen.p_value >= 0.05  # of constant's improvement over it
    # constant far better: it displaces them
    far = _decide(_Rows({"constant": (0.1, 0.0), "linear": (0.8, 0.0)}), held="linear")
    assert far.chosen.leaves == "constant"
    assert far.candidates[-1].held is True and far.candidates[-1].p_value < 0.05
    # without a linear champion, linear leaves must win beyond chance, as before
    even = {"constant": (0.5, 0.05), "linear": (0.5, 0.0)}  # linear a little better
    plain = _decide(_Rows(even), held="constant")
    assert plain.chosen.leaves == "constant" and plain.candidates[-1].held is None
    assert _decide(_Rows(even), held=None).chosen.leaves == "constant"
    # the record says which candidate was the incumbent
    assert close.to_dict()["candidates"][-1]["held"] is True
    assert "held" not in close.to_dict()["candidates"][0]


def test_champion_leaves_reads_the_champions_params() -> None:
    from datetime import datetime

    from retrainer.core.entities import ModelVersion
    from retrainer.lifecycle.choice import champion_leaves

    def version(name: str, family: str, params: dict[str, Any]) -> ModelVersion:
        return ModelVersion(
            "m", name, None, family, params, datetime(2024, 1, 1), "manual", "", "initial",
            None, None, 10, "", {}, {}, "", "", None, 0,
        )  # fmt: skip

    versions = [
        version("1.0.0", "lightgbm", {"linear_tree": True}),
        version("1.1.0", "lightgbm", {"num_leaves": 31}),
        version("1.2.0", "randomforest", {"n_estimators": 20}),
    ]
    assert [champion_leaves(versions, v) for v in ("1.0.0", "1.1.0", "1.2.0", None)] == [
        "linear",
        "constant",
        "constant",
        None,
    ]
