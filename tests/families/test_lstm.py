"""The lstm family on its own: windows per entity, what it learns from history, the cold start,
the entity parameter's rules and the artifact."""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch", reason="the lstm family needs pip install 'retrainer[mlp]'")

from retrainer.core.errors import ConfigError
from retrainer.families import load_model
from retrainer.families.lstm_config import history_windows
from retrainer.families.lstm_family import LSTMModel

SMALL: dict[str, Any] = {
    "hidden_size": 16,
    "lookback": 3,
    "epochs": 40,
    "batch_size": 64,
    "learning_rate": 0.01,
    "entity": "shop",
}


def shops(n_days: int = 150, n_shops: int = 4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Interleaved daily rows of several shops; the target is whether the shop's previous
    day's ``x`` was positive: only a row's own history tells."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_days, n_shops))
    y = np.zeros_like(x, dtype=int)
    y[1:] = (x[:-1] > 0).astype(int)
    frame = pd.DataFrame(
        {"x": x.reshape(-1), "shop": np.tile([f"s{k}" for k in range(n_shops)], n_days)}
    )
    return frame.iloc[n_shops:].reset_index(drop=True), y.reshape(-1)[n_shops:]


def naive_windows(groups: np.ndarray, lookback: int) -> np.ndarray:
    n = len(groups)
    out = np.full((n, lookback + 1), n)
    for i in range(n):
        earlier = [j for j in range(i + 1) if groups[j] == groups[i]][-(lookback + 1) :]
        out[i, lookback + 1 - len(earlier) :] = earlier
    return out


@pytest.mark.parametrize("lookback", [1, 3])
def test_windows_hold_each_entitys_previous_rows(lookback: int) -> None:
    groups = np.random.default_rng(1).integers(0, 4, size=60).astype(float)
    np.testing.assert_array_equal(
        history_windows(groups, lookback), naive_windows(groups, lookback)
    )


def test_learns_from_the_entitys_history_not_the_neighbours() -> None:
    X, y = shops()
    model = LSTMModel("classification", ["x"], ["shop"], SMALL).fit(X, y)
    X_new, y_new = shops(seed=2)
    assert (model.predict(X_new) == y_new).mean() > 0.9
    one = LSTMModel("classification", ["x"], ["shop"], {**SMALL, "entity": None}).fit(X, y)
    assert (one.predict(X_new) == y_new).mean() < 0.75  # the previous row is another shop's


def test_a_row_without_history_is_scored_from_itself() -> None:
    X, y = shops()
    model = LSTMModel("classification", ["x"], ["shop"], SMALL).fit(X, y)
    new = pd.DataFrame({"x": [0.3], "shop": ["never seen"]})
    cold = model.predict_raw(new)
    assert np.isfinite(cold).all() and np.allclose(cold.sum(axis=1), 1.0)
    warm = model.predict_raw(pd.concat([pd.DataFrame({"x": [2.0], "shop": ["s1"]}),
                                        new.assign(shop="s1")]))[-1:]  # fmt: skip
    assert not np.allclose(cold, warm)
    # two unseen shops keep apart: the second's history is not the first's row
    both = model.predict_raw(pd.DataFrame({"x": [2.0, 0.3], "shop": ["new a", "new b"]}))
    np.testing.assert_allclose(both[1:], cold, rtol=1e-6)


def test_other_entities_rows_do_not_change_a_prediction() -> None:
    X, y = shops()
    model = LSTMModel("regression", ["x"], ["shop"], SMALL).fit(X, y.astype(float))
    alone = X[X["shop"] == "s2"].tail(10)
    mixed = X.tail(40)
    np.testing.assert_allclose(
        model.predict(alone), model.predict(mixed)[mixed["shop"].to_numpy() == "s2"], rtol=1e-5
    )


def test_the_entity_must_be_a_categorical_feature() -> None:
    with pytest.raises(ConfigError, match=r"'store'.*categorical features are \['shop'\]"):
        LSTMModel("classification", ["x"], ["shop"], {"entity": "store"})
    with pytest.raises(ConfigError, match="'lookback'"):
        LSTMModel("classification", ["x"], ["shop"], {"lookback": 0})


def test_the_artifact_is_json_and_safetensors_and_loads_the_same() -> None:
    X, y = shops(n_days=40)
    model = LSTMModel("classification", ["x"], ["shop"], {**SMALL, "epochs": 3}).fit(X, y)
    artifact = model.save()
    with zipfile.ZipFile(BytesIO(artifact)) as zf:
        payload = zf.read("lstm.zip")
    with zipfile.ZipFile(BytesIO(payload)) as zf:
        assert zf.namelist() == ["config.json", "weights.safetensors"]
    loaded = load_model(artifact)
    np.testing.assert_array_equal(loaded.predict_raw(X), model.predict_raw(X))
    # a plain schema matrix (as the server encodes) scores seen entities the same
    np.testing.assert_allclose(loaded.predict_raw(loaded.schema_.matrix(X)), model.predict_raw(X))


def test_early_stopping_settles_the_refit_and_an_empty_batch_scores_nothing() -> None:
    from retrainer.families import ValidationSet

    X, y = shops()
    val_X, val_y = shops(n_days=30, seed=3)
    model = LSTMModel("classification", ["x"], ["shop"], {**SMALL, "patience": 2})
    model.fit(X, y, ValidationSet(val_X, pd.Series(val_y)))
    assert model.settled_params() == {"epochs": model.epochs_} and model.epochs_ <= 40
    assert model.predict_raw(X.head(0)).shape == (0, 2)
