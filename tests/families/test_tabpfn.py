"""TabPFN: where weights are looked for, the missing-weights error, offline operation, and the
stored context (end to end on tiny random weights when the package is installed)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import FamilyUnavailableError
from retrainer.families import load_model
from retrainer.families.base import read_artifact, read_zip
from retrainer.families.tabpfn_family import (
    DEFAULT_WEIGHTS_DIR,
    ENV_WEIGHTS,
    TabPFNModel,
    find_weights,
    weights_location,
    write_random_weights,
)

needs_tabpfn = pytest.mark.skipif(
    importlib.util.find_spec("tabpfn") is None,
    reason="tabpfn is not installed: pip install 'retrainer[tabpfn]'",
)


def data(n: int = 80, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", None], size=n)})
    return X, pd.Series(np.where(X["x"] > 0, "up", "down"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"TabPFN tried to use the network: {args!r}")

    for target, attr in (
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "getaddrinfo"),
        (socket, "create_connection"),
    ):
        monkeypatch.setattr(target, attr, refuse)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if importlib.util.find_spec("tabpfn") is None:
        pytest.skip("tabpfn is not installed: pip install 'retrainer[tabpfn]'")
    folder = tmp_path_factory.mktemp("weights")
    write_random_weights(folder)
    yield folder


def test_missing_weights_error_says_where_to_put_them(tmp_path: Path, no_network: None) -> None:
    m = TabPFNModel("classification", ["x"], ["c"], {"weights_path": str(tmp_path)})
    X, y = data()
    with pytest.raises(FamilyUnavailableError) as info:
        m.fit(X, y)
    message = info.value.message
    assert str(tmp_path) in message
    assert "classifier" in message and ENV_WEIGHTS in message and "weights_path" in message
    assert "fallback family" in message
    assert info.value.details["weights_path"] == str(tmp_path)


def test_weights_location_param_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_WEIGHTS, "/opt/tabpfn")
    assert weights_location({"weights_path": "/srv/w.ckpt"}) == Path("/srv/w.ckpt")
    assert weights_location() == Path("/opt/tabpfn")
    monkeypatch.delenv(ENV_WEIGHTS)
    assert weights_location() == Path(DEFAULT_WEIGHTS_DIR).expanduser()


def test_find_weights_prefers_the_task_file_then_a_multitask_one(tmp_path: Path) -> None:
    for name in ("b-classifier.ckpt", "a-regressor.ckpt", "tabpfn-v3.5-x.safetensors", "z.txt"):
        (tmp_path / name).write_bytes(b"w")
    assert find_weights(tmp_path, "classification") == tmp_path / "b-classifier.ckpt"
    assert find_weights(tmp_path, "regression") == tmp_path / "a-regressor.ckpt"
    (tmp_path / "a-regressor.ckpt").unlink()
    assert find_weights(tmp_path, "regression") == tmp_path / "tabpfn-v3.5-x.safetensors"
    assert find_weights(tmp_path / "z.txt", "regression") == tmp_path / "z.txt"
    assert find_weights(tmp_path / "absent", "regression") is None


@needs_tabpfn
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_end_to_end_on_random_weights_offline(task: str, weights: Path, no_network: None) -> None:
    X, y = data()
    target = y if task == "classification" else X["x"] * 2.0
    m = TabPFNModel(task, ["x"], ["c"], {"weights_path": str(weights), "n_estimators": 1})
    m.fit(X, target)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    out = m.predict_raw(X)
    assert np.isfinite(out).all()
    loaded = load_model(m.save())
    np.testing.assert_array_equal(loaded.predict_raw(X), out)


@needs_tabpfn
def test_payload_holds_the_context_and_the_weights_fingerprint(weights: Path) -> None:
    X, y = data()
    m = TabPFNModel(
        "classification", ["x"], ["c"], {"weights_path": str(weights), "n_estimators": 1}
    ).fit(X, y)
    _, payload = read_artifact(m.save())
    entries = read_zip(payload, "TabPFN payload")
    assert list(entries) == ["X.npy", "y.npy", "tabpfn.json"]
    context = np.lib.format.read_array(io.BytesIO(entries["X.npy"]), allow_pickle=False)
    np.testing.assert_array_equal(context, m.schema_.matrix(X))
    info = json.loads(entries["tabpfn.json"])
    used = weights / info["weights"]["file"]
    assert info["weights"]["sha256"] == hashlib.sha256(used.read_bytes()).hexdigest()
    assert info["weights"]["size"] == used.stat().st_size and info["tabpfn_version"]


@needs_tabpfn
def test_load_refuses_weights_other_than_the_fitted_ones(tmp_path: Path) -> None:
    write_random_weights(tmp_path, seed=0)
    X, y = data()
    m = TabPFNModel(
        "classification", ["x"], ["c"], {"weights_path": str(tmp_path), "n_estimators": 1}
    ).fit(X, y)
    artifact = m.save()
    write_random_weights(tmp_path, seed=1)
    with pytest.raises(FamilyUnavailableError, match="differs"):
        load_model(artifact)


@needs_tabpfn
def test_fine_tune_appends_rows_and_keeps_the_latest_context(weights: Path) -> None:
    X, y = data(n=120)
    params = {"weights_path": str(weights), "n_estimators": 1, "max_context_rows": 50}
    m = TabPFNModel("classification", ["x"], ["c"], params).fit(X, y)
    assert len(m.context_[0]) == 50
    X_new, y_new = data(n=30, seed=1)
    m.fine_tune(X_new, y_new)
    np.testing.assert_array_equal(m.context_[0][-30:], m.schema_.matrix(X_new))
    assert len(m.context_[1]) == 50


@needs_tabpfn
def test_real_weights_when_present(no_network: None) -> None:
    location = weights_location()
    if find_weights(location, "classification") is None:
        pytest.skip(f"no TabPFN weights at {location}; put a classifier checkpoint there")
    X, y = data(n=200)
    m = TabPFNModel("classification", ["x"], ["c"], {"n_estimators": 2}).fit(X, y)
    assert (m.predict(X) == y.to_numpy()).mean() > 0.8
