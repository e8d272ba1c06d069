"""The lstm family through the lifecycle: trained on several shops' daily rows with
``params.entity``; a batch predict takes each shop's history from the row store, the server
takes it from the store (cached) and the request; a shop with no history is a cold start
(``cold_start: true``), never an error."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch", reason="the lstm family needs pip install 'retrainer[mlp]'")

from retrainer.lifecycle import history
from retrainer.lifecycle.history import HistoryCache, stored_history
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_rows
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

SHOPS = 4
PARAMS = {"hidden_size": 16, "lookback": 3, "epochs": 40, "batch_size": 64,
          "learning_rate": 0.01, "entity": "shop"}  # fmt: skip


def shop_days(n_days: int, start: str = "2024-01-01", seed: int = 0) -> pd.DataFrame:
    """Daily rows of each shop; ``up`` is whether the shop's previous day's ``x`` was > 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_days, SHOPS))
    up = np.zeros_like(x, dtype=int)
    up[1:] = (x[:-1] > 0).astype(int)
    days = pd.date_range(start, periods=n_days, freq="D")
    return pd.DataFrame(
        {
            "row_id": [f"{d:%Y%m%d}-s{k}" for d in days for k in range(SHOPS)],
            "day": np.repeat(days, SHOPS),
            "shop": np.tile([f"s{k}" for k in range(SHOPS)], n_days),
            "x": x.reshape(-1),
            "up": up.reshape(-1),
        }
    ).iloc[SHOPS:]


@pytest.fixture
def workspace(make_workspace: Callable[..., Workspace]) -> Workspace:
    ws = make_workspace(
        target="up",
        id_column="row_id",
        time_column="day",
        features={"numeric": ["x"], "categorical": ["shop"]},
        family="lstm",
        params=PARAMS,
        training={"window_days": 1000},
    )
    frame = shop_days(200)
    ingest_frame(ws, "weather", frame)
    v = train(ws, "weather", deploy=True).version
    assert v.family == "lstm" and "fallback" not in v.details
    return ws


def test_stored_history_is_the_newest_rows_of_each_entity_before_a_time(
    workspace: Workspace,
) -> None:
    before = pd.Timestamp("2024-03-01").to_pydatetime()
    got = stored_history(
        workspace, "weather", "shop", ["s1", "s3", "nobody"], limit=3, columns=["x", "shop"],
        before=before,
    )  # fmt: skip
    assert sorted(got["shop"]) == ["s1"] * 3 + ["s3"] * 3
    assert (got["event_time"] < before).all() and got["event_time"].is_monotonic_increasing
    assert got["event_time"].max() == pd.Timestamp("2024-02-29")


def test_a_batch_takes_each_shops_history_from_the_store(workspace: Workspace) -> None:
    nxt = shop_days(201).tail(SHOPS)  # the day after the stored rows, in one batch
    assert nxt["day"].min() == pd.Timestamp("2024-07-19")
    scored = predict_rows(workspace, "weather", nxt.drop(columns=["up"]), log=False).frame
    assert not scored["cold_start"].any()
    assert (scored["prediction"].to_numpy() == nxt["up"].to_numpy()).all()
    new = nxt.assign(shop="s-new").head(1).drop(columns=["up"])
    cold = predict_rows(workspace, "weather", new, log=False).frame
    assert cold["cold_start"].tolist() == [True] and cold["prediction"].isin([0, 1]).all()


def test_a_batch_is_scored_in_time_order_whatever_its_row_order(workspace: Workspace) -> None:
    days = shop_days(205).tail(5 * SHOPS).drop(columns=["up"])  # five days after the store
    shuffled = days.sample(frac=1.0, random_state=3)
    a = predict_rows(workspace, "weather", days, log=False).frame
    b = predict_rows(workspace, "weather", shuffled, log=False).frame
    pd.testing.assert_frame_equal(a.sort_values("row_id"), b.sort_values("row_id"))
    assert not a["cold_start"].any()


def test_the_server_answers_a_shop_without_history_with_cold_start(
    workspace: Workspace,
) -> None:
    with warnings.catch_warnings():  # starlette's note on its httpx-based client
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from retrainer.serving.app import create_app

    nxt = shop_days(201).tail(SHOPS)
    rows = [{"x": float(r.x), "shop": r.shop} for r in nxt.itertuples()]
    rows.append({"x": 0.5, "shop": "s-new"})
    app = create_app(workspace, log_predictions=False, scheduler=False)
    with TestClient(app) as client:
        answer = client.post("/v1/models/weather/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
        body = answer.json()
    assert body["cold_start"] == [False] * SHOPS + [True]
    assert body["predictions"][:SHOPS] == nxt["up"].tolist()


def test_without_torch_the_fallback_family_trains_and_says_why(
    make_workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    monkeypatch.delitem(sys.modules, "retrainer.families.lstm_family", raising=False)
    ws = make_workspace(
        target="up",
        id_column="row_id",
        time_column="day",
        features={"numeric": ["x"], "categorical": ["shop"]},
        family="lstm",
        params={"lstm": PARAMS, "randomforest": {"n_estimators": 5}},
        training={"window_days": 1000},
    )
    ingest_frame(ws, "weather", shop_days(60))
    v = train(ws, "weather").version
    assert v.family == "randomforest"
    fallback = v.details["fallback"]
    assert fallback["requested"] == "lstm"
    assert "torch" in fallback["reason"] and "pip install 'retrainer[mlp]'" in fallback["reason"]


def test_the_servers_history_cache_is_bounded_and_reads_each_entity_once(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainer.families import load_model

    model = load_model(workspace.artifact_bytes(workspace.store.get_version("weather", "1.0.0")))
    seq = history.as_sequence(model)
    assert seq is not None
    reads: list[list[str]] = []
    real = history.stored_history

    def counted(*args: object, **kwargs: object) -> pd.DataFrame:
        reads.append(list(args[3]))  # type: ignore[call-overload]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(history, "stored_history", counted)
    cache = HistoryCache(max_entities=2, ttl_s=3600)
    got = cache.history(workspace, "weather", seq, pd.DataFrame({"shop": ["s1", "s2"]}))
    assert sorted(got["shop"]) == ["s1"] * 3 + ["s2"] * 3
    cache.history(workspace, "weather", seq, pd.DataFrame({"shop": ["s2", "s1"]}))
    assert reads == [["s1", "s2"]]  # the second request came from the cache
    cache.history(workspace, "weather", seq, pd.DataFrame({"shop": ["s3"]}))
    assert reads[-1] == ["s3"] and len(cache._rows) == 2  # s1, the least recent, went
