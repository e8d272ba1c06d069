"""Training, fallback, retention and rollback through the lifecycle on both backends."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import ConflictError, FamilyUnavailableError, IntegrityError
from retrainer.core.spec import ModelSpec
from retrainer.families import FamilyModel, lightgbm_family
from retrainer.lifecycle import fitting
from retrainer.lifecycle.deploy import apply_retention, deploy, rollback
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.fitting import fit_family, fit_with_early_stopping
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_rows
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace


def _years(df: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return df[(df["date"] >= start) & (df["date"] < end)]


def test_train_deploy_retrain_rollback(
    store_url: str, make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(store=store_url)
    ingest_frame(ws, "weather", _years(weather_df, "1949-01-01", "1953-01-01"))
    v1 = train(ws, "weather", deploy=True).version
    assert (v1.version, v1.parent, v1.kind) == ("1.0.0", None, "initial")
    assert 0.6 < v1.metrics["accuracy"] < 0.95 and v1.train_start is not None
    ingest_frame(ws, "weather", _years(weather_df, "1953-01-01", "1954-01-01"))
    r2 = train(ws, "weather", deploy=True, force=True)
    v2 = r2.version
    assert (v2.version, v2.parent) == ("1.1.0", "1.0.0")
    gate = v2.details["gate"]
    assert gate["champion_version"] == "1.0.0"
    assert gate["verdict"] in ("pass", "reject", "insufficient")
    assert r2.deployed and ws.store.events("weather")[-1].forced == (gate["verdict"] != "pass")
    ft = fine_tune(ws, "weather", days=200).version
    assert (ft.version, ft.parent, ft.kind) == ("1.1.1", "1.1.0", "fine_tune")
    ev = rollback(ws, "weather")
    assert (ev.from_version, ev.to_version) == ("1.1.0", "1.0.0")
    with pytest.raises(ConflictError, match="no previous champion"):
        rollback(ws, "weather")
    # the store fills inputs made from time the champion may have learnt (yesterday's rain)
    pred = predict_rows(ws, "weather", weather_df.head(5), log=False).frame
    assert list(pred.columns[-3:]) == ["prediction", "proba_0", "proba_1"]


def test_fallback_family_trains_and_is_recorded(
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise FamilyUnavailableError("lightgbm is broken here")

    monkeypatch.setattr(lightgbm_family.LightGBMModel, "_fit", broken)
    ws = make_workspace(params={})
    ingest_frame(ws, "weather", _years(weather_df, "1949-01-01", "1951-01-01"))
    v = train(ws, "weather").version
    assert v.family == "randomforest"
    assert v.details["fallback"]["requested"] == "lightgbm"
    assert "broken" in v.details["fallback"]["reason"]


def test_retention_keeps_champion_and_previous(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(retention={"keep": 1}, params={"n_estimators": 5})

    def more_then_train(year: int, deploy: bool = False) -> None:
        # new rows each time: identical data would give identical, shared artifacts
        ingest_frame(ws, "weather", _years(weather_df, "1949-01-01", f"{year}-01-01"))
        train(ws, "weather", deploy=deploy, force=True)

    more_then_train(1951, deploy=True)  # 1.0.0
    more_then_train(1952, deploy=True)  # 1.1.0 (1.0.0 previous)
    more_then_train(1953)  # 1.2.0
    more_then_train(1954)  # 1.3.0 -> 1.2.0 deleted
    status = {v.version: v.status for v in ws.store.list_versions("weather")}
    assert status == {"1.0.0": "ready", "1.1.0": "ready", "1.2.0": "deleted", "1.3.0": "ready"}
    deleted = ws.store.get_version("weather", "1.2.0")
    assert not ws.artifacts.exists(deleted.artifact_uri)
    with pytest.raises(ConflictError, match="deleted by retention"):
        deploy(ws, "weather", "1.2.0")
    assert apply_retention(ws, "weather") == []
    more_then_train(1955)
    assert ws.store.list_versions("weather")[-1].version == "1.4.0"  # numbers never reused


def test_tampered_artifact_is_never_deployed(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(params={"n_estimators": 5})
    ingest_frame(ws, "weather", _years(weather_df, "1949-01-01", "1951-01-01"))
    train(ws, "weather", deploy=True)
    v2 = train(ws, "weather").version
    with open(ws.artifacts.location(v2.artifact_uri), "r+b") as fh:
        fh.seek(40)
        fh.write(b"\x00\x01")
    with pytest.raises(IntegrityError, match=r"version 1\.1\.0 at .*does not match"):
        deploy(ws, "weather", "1.1.0")
    assert ws.store.roles("weather").champion == "1.0.0"
    assert len(ws.store.events("weather")) == 1


def _linear(n_estimators: int | None = None) -> tuple[ModelSpec, pd.DataFrame]:
    from retrainer.core.spec import parse_spec

    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "entity_id": [str(i) for i in range(n)],
            "event_time": pd.date_range("2020-01-01", periods=n, freq="h"),
            "x": x,
            "target": (x + rng.normal(size=n) > 0).astype(int),
        }
    )
    params: dict[str, int] = {"num_threads": 1}
    if n_estimators is not None:
        params["n_estimators"] = n_estimators
    model = {
        "task": "classification",
        "target": "y",
        "id_column": "id",
        "time_column": "t",
        "features": {"numeric": ["x"]},
        "family": "lightgbm",
        "params": params,
        "training": {"choice": {"enabled": False}},  # one evaluation fit (test_choice: many)
    }
    return parse_spec({"models": {"m": model}}, environ={}).models["m"], frame


def test_the_served_boosting_model_learns_every_row_with_the_rounds_early_stopping_chose() -> None:
    spec, frame = _linear()
    fitted = fit_family(spec, "lightgbm", frame)
    booster = fitted.model.booster_  # type: ignore[attr-defined]
    assert fitted.params["n_estimators"] == 200  # the recipe, as the gate compares it
    assert booster.current_iteration() < 200  # the size early stopping settled on
    rounds = booster.current_iteration()
    params = {"num_threads": 1, "n_estimators": rounds}
    by_hand = lightgbm_family.LightGBMModel("classification", ["x"], [], params, 0)
    by_hand.fit(frame[["x"]], frame["target"])  # every row, that many rounds
    assert np.array_equal(fitted.model.predict_raw(frame[["x"]]), by_hand.predict_raw(frame[["x"]]))


@pytest.mark.parametrize(("cap", "early_stopping_fits"), [(200, 2), (5, 1)])
def test_the_size_is_settled_again_on_the_whole_window_unless_the_evaluation_fit_hit_the_cap(
    monkeypatch: pytest.MonkeyPatch, cap: int, early_stopping_fits: int
) -> None:
    calls: list[int] = []

    def counted(
        model: FamilyModel, X: pd.DataFrame, y: pd.Series, weight: np.ndarray | None = None
    ) -> FamilyModel:
        calls.append(len(X))
        return fit_with_early_stopping(model, X, y, weight)

    monkeypatch.setattr(fitting, "fit_with_early_stopping", counted)
    spec, frame = _linear(cap)
    booster = fit_family(spec, "lightgbm", frame).model.booster_  # type: ignore[attr-defined]
    assert calls[0] == 1200 and len(calls) == early_stopping_fits  # 1200: the window minus 20%
    assert (booster.current_iteration() == cap) == (cap == 5)  # 5 rounds stop no earlier


def test_the_gate_compares_like_with_like_when_the_champion_learnt_later(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace()
    ingest_frame(ws, "weather", _years(weather_df, "1949-01-01", "1953-01-01"))
    train(ws, "weather", deploy=True)  # 1.0.0: 1,461 rows up to 1952-12-31
    ingest_frame(ws, "weather", _years(weather_df, "1953-01-01", "1953-07-01"))
    # The holdout (the newest 20%) starts in 1952: the evaluation fit is older than 1.0.0.
    refresh = train(ws, "weather").version.details["gate"]
    assert refresh["refresh"] and refresh["verdict"] == "pass"
    assert refresh["handicap"].startswith("the champion learnt from 1461 rows up to 1952-12-31")
    assert any("shown, not judged" in r for r in refresh["reasons"])
    assert "catch_up_fit" not in refresh
    # A new recipe is judged on a fit of its own up to the champion's cut-off.
    other = train(ws, "weather", family="randomforest").version.details
    gate = other["gate"]
    assert not gate["refresh"] and gate["handicap"] is None
    assert gate["catch_up_fit"]["until"].startswith("1952-12-31")
    assert 1000 < gate["catch_up_fit"]["rows"] < 1461  # the window's rows before the cut-off
    assert other["fit_cpu_seconds"] >= gate["catch_up_fit"]["cpu_seconds"] > 0


def test_a_heavy_tail_warns_and_trains_a_declared_range_blocks(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    from retrainer.core.errors import QualityError

    rows = _years(weather_df, "1949-01-01", "1952-01-01").copy()
    rows.loc[rows.index[::10], "visibility"] = 50.0  # 10% far beyond 6 IQR
    ws = make_workspace()
    ingest_frame(ws, "weather", rows)
    v = train(ws, "weather").version
    assert v.details["quality_warnings"] == [
        "feature 'visibility': 10.0% of rows beyond 6 IQR, above max_outlier_fraction 5.0%"
    ]
    ranged = make_workspace(quality={"ranges": {"visibility": [-10, 10]}})
    ingest_frame(ranged, "weather", rows)
    with pytest.raises(QualityError, match=r"outliers  visibility  10.0%"):
        train(ranged, "weather")
