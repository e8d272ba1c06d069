"""The mlp family beyond the conformance suite: what it learns, early stopping, the scaling and
embeddings inside the saved network, fine-tune's lower learning rate, seeds, threads, the
artifact (no pickle), parameter rules and the environment's overrides of epochs and batch size.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="the mlp family needs pip install 'retrainer[mlp]'")
safetensors_torch = pytest.importorskip("safetensors.torch")

from retrainer.core.errors import ConfigError, IntegrityError  # noqa: E402
from retrainer.core.spec import parse_spec  # noqa: E402
from retrainer.families import (  # noqa: E402
    ValidationSet,
    load_model,
    mlp_family,
)
from retrainer.families import base as family_base  # noqa: E402
from retrainer.families.base import read_artifact, read_zip, write_zip  # noqa: E402
from retrainer.families.mlp_family import MLPModel  # noqa: E402
from retrainer.lifecycle.fine_tune import learning_rate_factor  # noqa: E402
from retrainer.lifecycle.fitting import make_model  # noqa: E402

FAST = {"hidden_sizes": [16], "epochs": 60, "batch_size": 32, "learning_rate": 0.01}


def data(n: int = 400, seed: int = 0, task: str = "classification") -> tuple[pd.DataFrame, Any]:
    """``x`` on a large scale (standardisation matters) and a colour that shifts the target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=500.0, scale=100.0, size=n)
    c = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n)
    signal = (x - 500.0) / 100.0 + 2.0 * (c == "red") - 0.7
    if task == "classification":
        return pd.DataFrame({"x": x, "c": c}), pd.Series(np.where(signal > 0, "yes", "no"))
    return pd.DataFrame({"x": x, "c": c}), pd.Series(3.0 * signal + 40.0)


def fit(task: str = "classification", **params: Any) -> tuple[MLPModel, pd.DataFrame, Any]:
    X, y = data(task=task)
    return MLPModel(task, ["x"], ["c"], {**FAST, **params}, seed=3).fit(X, y), X, y


def test_learns_a_classifier_and_a_regression_on_raw_scale_inputs() -> None:
    model, _, _ = fit()
    X_new, y_new = data(seed=1)
    assert (model.predict(X_new) == y_new).mean() > 0.9
    proba = model.predict_proba(X_new)
    assert proba.shape == (len(X_new), 2) and np.allclose(proba.sum(axis=1), 1.0)
    reg, _, _ = fit("regression")
    X_new, y_new = data(seed=1, task="regression")
    residual = np.asarray(y_new) - reg.predict(X_new)
    assert np.mean(residual**2) < 0.1 * np.var(y_new)


def test_standardisation_and_embeddings_live_in_the_saved_network() -> None:
    model, X, _ = fit()
    state = model.net_.state_dict()
    assert state["mean"].item() == pytest.approx(X["x"].mean(), rel=1e-5)
    assert state["scale"].item() == pytest.approx(X["x"].std(ddof=0), rel=1e-5)
    # three levels plus index 0 for a missing or unseen level; width min(16, (3 + 1) // 2 + 1)
    assert tuple(state["embeddings.0.weight"].shape) == (4, 3)
    entries = read_zip(read_artifact(model.save())[1], "payload")
    assert list(entries) == ["config.json", "weights.safetensors"]
    config = json.loads(entries["config.json"])["net"]
    assert config["cardinalities"] == [3] and config["embedding_dims"] == [3]
    weights = safetensors_torch.load(entries["weights.safetensors"])
    assert set(weights) == set(state)
    assert torch.equal(weights["mean"], state["mean"])


def test_the_artifact_holds_no_pickle() -> None:
    model, _, _ = fit()
    outer = zipfile.ZipFile(io.BytesIO(model.save()))
    inner = zipfile.ZipFile(io.BytesIO(outer.read("mlp.zip")))
    for name in inner.namelist():
        data_ = inner.read(name)
        assert not data_.startswith(b"\x80"), f"{name} starts like a pickle"
        assert b"torch._utils" not in data_ and b"_rebuild_tensor" not in data_


def test_early_stopping_keeps_the_best_epoch_and_settles_the_refit() -> None:
    X, y = data(n=300)
    X_val, y_val = data(n=100, seed=5)
    y_val = y_val.map({"yes": "no", "no": "yes"})  # every epoch that learns makes it worse
    model = MLPModel("classification", ["x"], ["c"], {**FAST, "epochs": 200, "patience": 3})
    model.fit(X, y, ValidationSet(X_val, y_val))
    assert 1 <= model.epochs_ < 200
    assert model.settled_params() == {"epochs": model.epochs_}
    assert load_model(model.save()).epochs_ == model.epochs_


def test_without_validation_every_epoch_runs() -> None:
    model, _, _ = fit(epochs=7)
    assert model.settled_params() == {"epochs": 7}


def test_fine_tune_continues_from_the_weights_at_a_lower_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, X, _ = fit()
    rates: list[float] = []
    adam = torch.optim.Adam

    def spy(params: Any, **kw: Any) -> Any:
        rates.append(kw["lr"])
        return adam(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", spy)
    tuned = load_model(model.save())
    scaling = {
        k: v.clone() for k, v in tuned.net_.state_dict().items() if "mean" in k or "scale" in k
    }
    X_new, y_new = data(n=200, seed=2)
    y_new = y_new.map({"yes": "no", "no": "yes"})
    tuned.fine_tune(X_new, y_new, learning_rate_factor=0.25, rounds=5)
    assert rates == [pytest.approx(0.01 * 0.25)]
    assert tuned.epochs_ == model.epochs_ + 5
    for k, v in scaling.items():  # the champion's standardisation stays
        assert torch.equal(tuned.net_.state_dict()[k], v)
    assert not np.allclose(tuned.predict_raw(X), model.predict_raw(X))


def test_a_fit_leaves_the_process_random_state_and_thread_count_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    fit(num_threads=1)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_the_same_seed_gives_the_same_bytes_another_seed_other_weights() -> None:
    X, y = data()
    a = MLPModel("classification", ["x"], ["c"], FAST, seed=1).fit(X, y).save()
    b = MLPModel("classification", ["x"], ["c"], FAST, seed=1).fit(X, y).save()
    c = MLPModel("classification", ["x"], ["c"], FAST, seed=2).fit(X, y).save()
    assert a == b != c


def test_training_uses_the_resolved_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    head = mlp_family.MLPNet.head

    def spy(self: Any, dense: Any, codes: Any) -> Any:
        seen.append(torch.get_num_threads())
        return head(self, dense, codes)

    monkeypatch.setattr(mlp_family.MLPNet, "head", spy)
    monkeypatch.setattr(family_base, "available_cpus", lambda: 2)
    X, y = data(n=100)
    MLPModel("classification", ["x"], ["c"], {**FAST, "epochs": 2}, threads=1).fit(X, y)
    assert set(seen) == {1}
    seen.clear()
    MLPModel("classification", ["x"], ["c"], {**FAST, "epochs": 2}, threads=8).fit(X, y)
    assert set(seen) == {2}  # never more than the CPUs
    seen.clear()
    MLPModel("classification", ["x"], ["c"], {**FAST, "epochs": 2}).fit(X, y)
    assert set(seen) == {1}  # unset: one thread, not every CPU (see the module's doc)
    seen.clear()
    model = MLPModel("classification", ["x"], ["c"], {**FAST, "epochs": 2, "num_threads": 2})
    model.fit(X, y)
    assert set(seen) == {2} and "num_threads" not in read_artifact(model.save())[0]["extra"]


def test_row_weights_change_the_model() -> None:
    X, y = data()
    weight = np.where(np.arange(len(X)) < 200, 1.0, 0.0)
    plain = MLPModel("classification", ["x"], ["c"], FAST, seed=1).fit(X, y)
    weighted = MLPModel("classification", ["x"], ["c"], FAST, seed=1).fit(X, y, weight=weight)
    assert not np.allclose(plain.predict_raw(X), weighted.predict_raw(X))


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("hidden_sizes", [64, 0]),
        ("hidden_sizes", 64),
        ("dropout", 1.0),
        ("weight_decay", -1),
        ("learning_rate", 0),
        ("epochs", 2.5),
        ("batch_size", True),
        ("patience", 0),
        ("embedding_dim", 0),
    ],
)
def test_a_bad_value_names_the_parameter_and_what_it_allows(param: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        MLPModel("classification", ["x"], ["c"], {param: value})
    message = info.value.message
    assert f"'{param}' parameter of the 'mlp' family" in message and repr(value) in message
    assert f"params.{param}" in message


def test_a_damaged_payload_is_an_integrity_error() -> None:
    model, _, _ = fit()
    meta, payload = read_artifact(model.save())
    entries = read_zip(payload, "payload")
    config = json.loads(entries["config.json"])
    config["net"]["hidden_sizes"] = [32]  # weights of another shape
    bad = write_zip(
        [
            ("config.json", json.dumps(config).encode()),
            ("weights.safetensors", entries["weights.safetensors"]),
        ]
    )
    artifact = write_zip([("meta.json", json.dumps(meta).encode()), ("mlp.zip", bad)])
    with pytest.raises(IntegrityError, match="MLP payload"):
        load_model(artifact)


SPEC = {
    "task": "classification",
    "target": "y",
    "id_column": "id",
    "time_column": "t",
    "features": {"numeric": ["x"], "categorical": ["c"]},
    "family": "mlp",
}


@pytest.mark.parametrize(
    ("params", "environ"),
    [
        ({}, {"RETRAINER_CHURN__PARAMS__EPOCHS": "7", "RETRAINER_CHURN__PARAMS__BATCH_SIZE": "64"}),
        (
            {"mlp": {"epochs": 50}, "randomforest": {"n_estimators": 10}},
            {
                "RETRAINER_CHURN__PARAMS__MLP__EPOCHS": "7",
                "RETRAINER_CHURN__PARAMS__MLP__BATCH_SIZE": "64",
            },
        ),
    ],
    ids=["flat", "per-family"],
)
def test_epochs_and_batch_size_come_from_the_environment_per_model(
    params: dict[str, Any], environ: dict[str, str]
) -> None:
    spec = parse_spec(
        {"models": {"churn": {**SPEC, "params": params}, "other": {**SPEC}}}, environ=environ
    )
    model = make_model(spec.model("churn"), "mlp", seed=0)
    assert model.effective_params["epochs"] == 7 and model.effective_params["batch_size"] == 64
    other = make_model(spec.model("other"), "mlp", seed=0)
    assert other.effective_params["epochs"] == MLPModel.default_params["epochs"]


def test_an_unknown_parameter_is_refused_when_the_spec_loads() -> None:
    with pytest.raises(ConfigError, match=r"'epoch'.*did you mean 'epochs'"):
        parse_spec({"models": {"churn": {**SPEC, "params": {"epoch": 3}}}}, environ={})


def test_an_absolute_fine_tune_rate_is_taken_over_the_networks_rate() -> None:
    body = {**SPEC, "params": {"learning_rate": 0.002}, "fine_tune": {"learning_rate": 0.0005}}
    spec = parse_spec({"models": {"churn": body}}, environ={}).model("churn")
    assert learning_rate_factor(spec, make_model(spec, "mlp", seed=0)) == pytest.approx(0.25)


def test_three_classes_and_an_empty_batch() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=600), "c": rng.choice(["a", "b"], 600)})
    y = np.select([X["x"] < -0.5, X["x"] > 0.5], ["low", "high"], "mid")
    model = MLPModel("classification", ["x"], ["c"], FAST, seed=0).fit(X, y)
    assert model.classes_ == ["high", "low", "mid"]
    assert (load_model(model.save()).predict(X) == y).mean() > 0.9
    assert model.predict_proba(X.head(0)).shape == (0, 3)
