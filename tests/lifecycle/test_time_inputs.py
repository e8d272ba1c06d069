"""Inputs made from time (training.choice.previous_actual and time_features): chosen by the
holdout where the target moves slowly or yesterday tells today, kept on the version's schema,
and filled from the store and the row's time by every path that scores rows (batch predict
through the real CLI, the REST server and a fleet on loopback, a replay); clients never send
them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from backup_craft import run_cli
from daily_rows import choice_spec, choice_workspace

from loopback import served
from retrainer.core.errors import ConfigError
from retrainer.core.feature_sets import DAY_COS, DAY_SIN, PREVIOUS_ACTUAL
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_rows
from retrainer.lifecycle.time_inputs import NewestRowCache, TimeInputs, add_inputs, stored_inputs
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app

DAYS = 3 * 365
PARAMS = {"num_threads": 1, "n_estimators": 60}


def walk(n_days: int = DAYS, seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """One row a day; ``y`` is a random walk (its best predictor: yesterday's ``y``) and
    ``x0..x2`` are noise."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_days, 3))
    return pd.DataFrame(
        {
            "id": [f"{seed}-{i}" for i in range(n_days)],
            "t": pd.Timestamp(start) + pd.to_timedelta(np.arange(n_days), unit="D"),
            "x0": x[:, 0],
            "x1": x[:, 1],
            "x2": x[:, 2],
            "y": np.cumsum(rng.normal(0, 1, n_days)),
        }
    )


def _workspace(tmp_path: Path, **model: Any) -> Workspace:
    return choice_workspace(tmp_path, task="regression", params=PARAMS, **model)


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[Workspace]:
    """A champion trained on three years of the walk."""
    with _workspace(tmp_path) as ws:
        ingest_frame(ws, "m", walk())
        train(ws, "m", deploy=True)
        yield ws


def _chosen(ws: Workspace) -> dict[str, Any]:
    champion = ws.store.roles("m").champion
    return ws.store.get_version("m", champion).details["training_choice"]  # type: ignore[arg-type]


def test_the_previous_actual_is_chosen_where_it_predicts_and_the_version_keeps_it(
    trained: Workspace,
) -> None:
    choice = _chosen(trained)
    last = choice["candidates"][-1]
    assert last.get("previous_actual") is True and last.get("skipped") is None, choice
    assert choice["chosen"].get("previous_actual") is True, choice
    assert choice["chosen"]["p_value"] < 0.05
    v = trained.store.get_version("m", trained.store.roles("m").champion or "")
    assert v.feature_schema["numeric"] == ["x0", "x1", "x2", PREVIOUS_ACTUAL]
    without = [c.get("value") for c in choice["candidates"] if not c.get("previous_actual")]
    assert choice["chosen"]["value"] < 0.5 * min(v for v in without if v is not None)


def test_a_batch_is_scored_with_the_stored_actuals_before_each_row(trained: Workspace) -> None:
    stored = trained.store.training_frame("m")
    nxt = walk(DAYS + 3).tail(3).drop(columns=["y"])  # the three days after the stored rows
    scored = predict_rows(trained, "m", nxt, log=False).frame
    assert PREVIOUS_ACTUAL not in scored.columns  # an input, not an output
    model = trained.load("m", trained.store.roles("m").champion or "")
    by_hand = nxt[["x0", "x1", "x2"]].assign(**{PREVIOUS_ACTUAL: stored["target"].iloc[-1]})
    assert np.allclose(scored["prediction"], model.predict(by_hand))
    # a batch over stored days sees, for each row, the actual of the day before it
    past = walk().iloc[100:103].drop(columns=["y"])
    scored = predict_rows(trained, "m", past, log=False).frame
    by_hand = past[["x0", "x1", "x2"]].assign(**{PREVIOUS_ACTUAL: walk()["y"].iloc[99:102].values})
    assert np.allclose(scored["prediction"], model.predict(by_hand))


def test_the_real_cli_scores_a_file_without_the_column(trained: Workspace, tmp_path: Path) -> None:
    cfg = tmp_path / "retrainer.yaml"
    cfg.write_text(yaml.safe_dump(choice_spec(tmp_path, task="regression", params=PARAMS)))
    src, out = tmp_path / "next.csv", tmp_path / "scored.csv"
    walk(DAYS + 2).tail(2).drop(columns=["y"]).to_csv(src, index=False)
    done = run_cli(cfg, "predict", "m", str(src), "--out", str(out))
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["id", "t", "x0", "x1", "x2", "prediction"]
    last = trained.store.training_frame("m")["target"].iloc[-1]
    assert abs(scored["prediction"].iloc[0] - last) < 3  # near yesterday's, not a mean level


def test_the_server_fills_it_from_the_store_and_sees_new_actuals(trained: Workspace) -> None:
    from retrainer.serving.sequence import NEWEST_KEY

    app = create_app(trained, log_predictions=False, scheduler=False)
    app.state.retrainer.cache[NEWEST_KEY] = NewestRowCache(ttl_s=0)  # read on every request
    model = trained.load("m", trained.store.roles("m").champion or "")
    row = {"id": "new-1", "x0": 0.5, "x1": 0.5, "x2": 0.5}
    url = "/v1/models/m/predict"
    with served(app) as http:
        first = http.post(url, json={"rows": [row]})
        assert first.status_code == 200, first.text
        last = trained.store.training_frame("m")["target"].iloc[-1]
        expected = model.predict(pd.DataFrame([{**row, PREVIOUS_ACTUAL: last}]))[0]
        assert first.json()["predictions"][0] == pytest.approx(expected)
        # a new actual is stored: the next request sees it
        later = walk(DAYS + 1, seed=0).tail(1).assign(y=last + 40.0)
        ingest_frame(trained, "m", later)
        second = http.post(url, json={"rows": [row]})
        assert second.status_code == 200, second.text
        expected = model.predict(pd.DataFrame([{**row, PREVIOUS_ACTUAL: last + 40.0}]))[0]
        assert second.json()["predictions"][0] == pytest.approx(expected)
        assert second.json()["predictions"][0] > first.json()["predictions"][0] + 1


def test_a_fine_tune_continues_a_champion_that_learnt_it(trained: Workspace) -> None:
    ingest_frame(trained, "m", walk(DAYS + 120).iloc[DAYS:])
    tuned = fine_tune(trained, "m", force=True).version
    assert tuned is not None
    assert tuned.feature_schema["numeric"][-1] == PREVIOUS_ACTUAL
    assert tuned.version.split(".")[0] == "1"  # a patch of the champion, not a new schema


def test_the_switch_off_never_tries_it(tmp_path: Path) -> None:
    off = {"choice": {"previous_actual": False}}
    with _workspace(tmp_path, training=off) as ws:
        ingest_frame(ws, "m", walk(400))
        record = train(ws, "m").version.details["training_choice"]
    assert not any(c.get("previous_actual") for c in record["candidates"])


def sticky(n_days: int = DAYS, seed: int = 0) -> pd.DataFrame:
    """A daily label that keeps yesterday's 9 times in 10 (its best predictor: yesterday's
    label); ``x0..x2`` are noise."""
    frame = walk(n_days, seed)
    flips = np.random.default_rng(seed + 1).random(n_days) < 0.1
    return frame.assign(y=np.cumsum(flips) % 2)


def test_a_classifier_learns_yesterdays_label_where_it_predicts(tmp_path: Path) -> None:
    with choice_workspace(tmp_path, params=PARAMS) as ws:
        ingest_frame(ws, "m", sticky())
        version = train(ws, "m", deploy=True).version
        choice = version.details["training_choice"]
        assert choice["chosen"].get("previous_actual") is True, choice
        assert version.feature_schema["numeric"] == ["x0", "x1", "x2", PREVIOUS_ACTUAL]
        assert choice["chosen"]["value"] > 0.85  # accuracy; the noise alone: about 0.5
        # scored with yesterday's stored label, which the client never sends
        last = sticky().iloc[-1]
        rows = pd.DataFrame([{**last.to_dict(), "id": "new", "t": last["t"] + timedelta(days=1)}])
        out = predict_rows(ws, "m", rows.drop(columns=["y"]), log=False).frame
    assert out["prediction"].astype(int).tolist() == [last["y"]]


def test_a_classifier_whose_labels_are_not_numbers_skips_it_and_says_so(
    tmp_path: Path,
) -> None:
    words = sticky(400).assign(y=lambda f: np.where(f["y"] == 1, "rain", "dry"))
    with choice_workspace(tmp_path, params=PARAMS) as ws:
        ingest_frame(ws, "m", words)
        version = train(ws, "m").version
    tried = [
        c for c in version.details["training_choice"]["candidates"] if c.get("previous_actual")
    ]
    assert [c["skipped"] for c in tried] == [
        "the labels are not numbers: the previous actual is a number column"
    ]
    assert PREVIOUS_ACTUAL not in version.feature_schema["numeric"]


def test_rows_see_the_newest_row_of_an_earlier_time() -> None:
    times = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-04"])
    frame = pd.DataFrame({"event_time": times, "target": [1.0, 2.0, 3.0, 4.0],
                          "x": [10.0, 20.0, 30.0, 40.0]})  # fmt: skip
    older = pd.DataFrame(
        {"event_time": pd.to_datetime(["2023-12-30"]), "target": [9.0], "x": [90.0]}
    )
    got = add_inputs(frame.copy(), TimeInputs(True, ("x",), True), older)
    assert got[PREVIOUS_ACTUAL].tolist() == [9.0, 1.0, 1.0, 3.0]
    assert got["__previous:x"].tolist() == [90.0, 10.0, 10.0, 30.0]
    assert got["__day_of_year_sin"].round(3).tolist() == [0.0, 0.017, 0.017, 0.052]


def test_a_spec_cannot_name_a_column_with_the_reserved_prefix(tmp_path: Path) -> None:
    raw = choice_spec(tmp_path, task="regression")
    raw["models"]["m"]["features"] = {"numeric": ["x0", "__mine"]}
    with pytest.raises(ConfigError, match="rename that column"):
        parse_spec(raw, environ={})


def test_a_replayed_row_sees_a_row_once_its_actual_arrived(tmp_path: Path) -> None:
    inputs = TimeInputs(True, ("x0",), True)
    with _workspace(tmp_path) as ws:
        ingest_frame(ws, "m", walk(10))  # stored: days 0..9
        spec = ws.model_spec("m")
        stored = ws.store.training_frame("m")
        rows = walk(14).iloc[10:14]  # days 10..13, served at once
        pending = rows.rename(columns={"t": "event_time", "y": "target"})
        two_days = stored_inputs(ws, spec, rows, inputs, pending, timedelta(days=2))
        one_day = stored_inputs(ws, spec, rows, inputs, pending, timedelta(days=1))
        alone = stored_inputs(ws, spec, rows, inputs)  # a batch: the stored rows only
    y, x0 = rows["y"].tolist(), rows["x0"].tolist()
    last_y, last_x0 = stored["target"].iloc[-1], stored["x0"].iloc[-1]
    # with a 2-day delay day 12 sees day 10's row; day 10 and 11 the newest stored one
    assert two_days[PREVIOUS_ACTUAL].tolist() == [last_y, last_y, y[0], y[1]]
    assert one_day[PREVIOUS_ACTUAL].tolist() == [last_y, y[0], y[1], y[2]]
    assert one_day["__previous:x0"].tolist() == [last_x0, x0[0], x0[1], x0[2]]
    assert alone[PREVIOUS_ACTUAL].tolist() == [last_y] * 4
    days = pd.to_datetime(rows["t"]).dt.day_of_year.to_numpy()
    assert np.allclose(alone["__day_of_year_sin"], np.sin(2 * np.pi * (days - 1) / 365.2425))


def test_a_fleets_members_get_their_own_newest_actual(tmp_path: Path) -> None:
    """Over loopback: a fleet request's rows are routed to their members, and each member
    that learnt the previous actual scores with its own newest stored actual."""
    from retrainer.core.fleet import member_name

    model = {
        "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
        "features": {"numeric": ["x0", "x1", "x2"]}, "family": "lightgbm", "params": PARAMS,
        "fleet": {"by": "shop"},
    }  # fmt: skip
    raw = {"store": f"sqlite:///{tmp_path / 'f.db'}", "artifacts": str(tmp_path / "a"),
           "models": {"sales": model}}  # fmt: skip
    shops = {"a": walk(DAYS, seed=1), "b": walk(DAYS, seed=2).assign(y=lambda f: f["y"] + 50)}
    frame = pd.concat([f.assign(shop=s) for s, f in shops.items()]).sort_values("t")
    with Workspace(parse_spec(raw, environ={})) as ws:
        ingest_frame(ws, "sales", frame)
        for shop in shops:
            v = train(ws, member_name("sales", shop), deploy=True).version
            assert v.feature_schema["numeric"][-1] == PREVIOUS_ACTUAL, v.details
        app = create_app(ws, log_predictions=False, scheduler=False)
        rows = [{"id": f"n-{s}", "shop": s, "x0": 0.5, "x1": 0.5, "x2": 0.5} for s in ("a", "b")]
        with served(app) as http:
            answer = http.post("/v1/models/sales/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
        for row, got in zip(rows, answer.json()["predictions"], strict=True):
            member = member_name("sales", str(row["shop"]))
            last = ws.store.training_frame(member)["target"].iloc[-1]
            model_ = ws.load(member, ws.store.roles(member).champion or "")
            by_hand = pd.DataFrame([{**row, PREVIOUS_ACTUAL: last}])
            assert got == pytest.approx(model_.predict(by_hand)[0])


def test_the_dask_engine_refuses_a_champion_that_learnt_it(
    trained: Workspace, tmp_path: Path
) -> None:
    """Before any cluster starts: the error names the option and the fix."""
    pytest.importorskip("dask.distributed")
    with _workspace(tmp_path, training={"engine": "dask"}) as ws:  # the same store
        assert ws.store.roles("m").champion is not None
        with pytest.raises(ConfigError, match=r"training\.choice\.previous_actual") as err:
            train(ws, "m")
    assert "Retrain it with the local engine" in str(err.value)


def lagged(n_days: int = DAYS, seed: int = 3) -> pd.DataFrame:
    """One row a day; ``y`` is yesterday's ``x0`` (scaled) plus noise: the row alone cannot
    tell it, the previous row's features can."""
    f = walk(n_days, seed=seed)
    rng = np.random.default_rng(seed)
    f["y"] = 10 * np.roll(f["x0"].to_numpy(), 1) + rng.normal(0, 0.1, n_days)
    return f.iloc[1:].reset_index(drop=True)


def test_the_time_features_are_chosen_where_yesterday_tells_today(tmp_path: Path) -> None:
    made = ["__previous:x0", "__previous:x1", "__previous:x2", DAY_SIN, DAY_COS]
    with _workspace(tmp_path) as ws:
        ingest_frame(ws, "m", lagged())
        v = train(ws, "m", deploy=True).version
        choice = v.details["training_choice"]
        assert choice["chosen"].get("time_features") is True, choice
        assert v.feature_schema["numeric"][3:] == [
            c for c in [PREVIOUS_ACTUAL, *made] if c in v.feature_schema["numeric"]
        ]
        assert set(made) <= set(v.feature_schema["numeric"])
        # a batch of the next two days: the first sees the newest stored row, the second
        # the first (the batch's own rows are not stored, so both see the stored one)
        stored = ws.store.training_frame("m")
        nxt = lagged(DAYS + 2).tail(2).drop(columns=["y"])
        scored = predict_rows(ws, "m", nxt, log=False).frame
        assert not any(c.startswith("__") for c in scored.columns)
        model = ws.load("m", v.version)
        day = pd.to_datetime(nxt["t"]).dt.day_of_year.to_numpy() - 1
        angle = 2 * np.pi * day / 365.2425
        by_hand = nxt[["x0", "x1", "x2"]].assign(
            **{f"__previous:{c}": stored[c].iloc[-1] for c in ("x0", "x1", "x2")},
            **{PREVIOUS_ACTUAL: stored["target"].iloc[-1], DAY_SIN: np.sin(angle),
               DAY_COS: np.cos(angle)},
        )  # fmt: skip
        assert np.allclose(scored["prediction"], model.predict(by_hand))
        # the server: the row's time gives the day of the year; the store the previous row
        app = create_app(ws, log_predictions=False, scheduler=False)
        row = {"id": "n-1", "t": str(nxt["t"].iloc[0].date()), "x0": 0.1, "x1": 0.2, "x2": 0.3}
        with served(app) as http:
            answer = http.post("/v1/models/m/predict", json={"rows": [row]})
        assert answer.status_code == 200, answer.text
        one = by_hand.iloc[[0]].assign(x0=0.1, x1=0.2, x2=0.3)
        assert answer.json()["predictions"][0] == pytest.approx(model.predict(one)[0])


def test_a_reused_choice_keeps_the_champions_time_inputs(trained: Workspace) -> None:
    """training.choice.every: the retrains between two choices fit the reused window once,
    with the champion's inputs, instead of trying them again."""
    again = train(trained, "m").version
    record = again.details["training_choice"]
    assert record["reused_from"] == "1.0.0"
    # its window, then the other leaf model on it, both with the champion's inputs
    assert [c.get("previous_actual") for c in record["candidates"]] == [True, True]
    assert PREVIOUS_ACTUAL in again.feature_schema["numeric"]


def test_predict_frame_says_how_to_score_a_version_that_learnt_them(trained: Workspace) -> None:
    from retrainer.core.errors import InputError
    from retrainer.lifecycle.predict import predict_frame, resolve_predictor

    rows = walk(DAYS + 1).tail(1).drop(columns=["y"])
    with pytest.raises(InputError, match=r"predict_rows\(ws, model, frame, log=False\)") as err:
        predict_frame(resolve_predictor(trained, "m"), rows)
    assert err.value.details["missing"] == [PREVIOUS_ACTUAL]
