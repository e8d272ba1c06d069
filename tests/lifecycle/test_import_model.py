"""`retrainer deploy MODEL --from-file PATH`: a model trained elsewhere with its own library
(LightGBM, XGBoost, CatBoost, scikit-learn through skops) becomes a verified, gated version of
its family; bad files exit 2 naming the file and the problem with nothing registered; a
model the gate rejects is registered, not deployed (exit 1), and `--force` deploys it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.datasets import WEATHER_FEATURES
from retrainer.families import load_model
from retrainer.plumbing.workspace import Workspace

MODEL = "weather"
runner = CliRunner()
Cli = Callable[..., str]


@pytest.fixture
def setup(
    config_file: Callable[..., Path],
    weather_csv: Callable[[str, str], Path],
    weather_df: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Cli, Path, pd.DataFrame]:
    """A champion trained on 1949-1950, then newer rows (1951-1952) stored: the rows the
    gate judges an import on. Returns the CLI, the spec path and the stored rows."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    config = config_file(params={"n_estimators": 20, "num_threads": 1})

    def cli(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, ["-c", str(config), *args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        assert res.exit_code == code, res.output
        return res.output

    cli("ingest", MODEL, str(weather_csv("1949-01-01", "1951-01-01")))
    cli("train", MODEL, "--deploy")
    cli("ingest", MODEL, str(weather_csv("1951-01-01", "1953-01-01")))
    rows = weather_df[weather_df["date"] < "1953-01-01"]
    return cli, config, rows


def versions(cli: Cli) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(cli("versions", MODEL, "--json"))
    return out


def lightgbm_file(path: Path, X: pd.DataFrame, y: pd.Series, **params: Any) -> Path:
    import lightgbm as lgb

    p = {"objective": "binary", "verbose": -1, "num_threads": 1, **params}
    rounds = p.pop("rounds", 60)
    lgb.train(p, lgb.Dataset(X, y), rounds).save_model(str(path))
    return path


def check_imported(cli: Cli, config: Path, path: Path, family: str) -> dict[str, Any]:
    """Import ``path``; the new version is the champion, of ``family``, kind import, parent
    the old champion, its reason names the file and its SHA-256; its artifact loads."""
    import hashlib

    before = json.loads(cli("status", MODEL, "--json"))["champion"]["version"]
    body = json.loads(cli("deploy", MODEL, "--from-file", str(path), "--json"))
    assert body["deployed"] and body["gate"]["verdict"] == "pass", body["gate"]
    assert (body["family"], body["kind"], body["parent"]) == (family, "import", before)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"imported {path.name} (sha256 {digest})" in body["reason"]
    assert json.loads(cli("status", MODEL, "--json"))["champion"]["version"] == body["version"]
    with Workspace.open(config) as ws:
        v = ws.store.get_version(MODEL, body["version"])
        model = load_model(ws.artifact_bytes(v))  # verified against its hash, then loaded
        assert model.name == family and model.classes_ == [0, 1]
        assert list(model.schema_.columns) == WEATHER_FEATURES
        assert v.details["import"]["sha256"] == digest
        assert v.details["confusion_matrix"]["labels"] == [0, 1]
    history = json.loads(cli("history", MODEL, "--json"))
    assert history[-1]["to_version"] == body["version"] and not history[-1]["forced"]
    return body


def test_lightgbm_text_model(setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path) -> None:
    cli, config, rows = setup
    path = lightgbm_file(tmp_path / "model.txt", rows[WEATHER_FEATURES], rows["rain"])
    body = check_imported(cli, config, path, "lightgbm")
    assert body["version"] == "1.1.0"  # same family and features: a minor version


def test_xgboost_json_model(setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path) -> None:
    import xgboost as xgb

    cli, config, rows = setup
    dm = xgb.DMatrix(rows[WEATHER_FEATURES], rows["rain"])
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1}, dm, 60)
    booster.save_model(str(tmp_path / "model.json"))
    body = check_imported(cli, config, tmp_path / "model.json", "xgboost")
    assert body["version"] == "2.0.0"  # another family: a major version


def test_catboost_model(setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path) -> None:
    import catboost

    cli, config, rows = setup
    clf = catboost.CatBoostClassifier(iterations=80, verbose=False, thread_count=1)
    clf.fit(rows[WEATHER_FEATURES], rows["rain"])
    clf.save_model(str(tmp_path / "model.cbm"))
    check_imported(cli, config, tmp_path / "model.cbm", "catboost")


def test_skops_random_forest(setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    cli, config, rows = setup
    rf = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1)
    rf.fit(rows[WEATHER_FEATURES], rows["rain"])
    sio.dump(rf, tmp_path / "model.skops")
    check_imported(cli, config, tmp_path / "model.skops", "randomforest")


def test_skops_linear_pipeline(setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path) -> None:
    """A scikit-learn Pipeline of the shape the linear family computes becomes a linear
    version that predicts what the Pipeline predicts, missing values included."""
    import skops.io as sio
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cli, config, rows = setup
    X = rows[WEATHER_FEATURES].copy()
    X.iloc[::7, 2] = np.nan  # a column with missing values: the imputer's indicator for it
    pipe = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True), StandardScaler(), LogisticRegression()
    ).fit(X, rows["rain"])
    sio.dump(pipe, tmp_path / "linear.skops")
    body = json.loads(
        cli("deploy", MODEL, "--from-file", str(tmp_path / "linear.skops"), "--force", "--json")
    )
    assert (body["family"], body["kind"]) == ("linear", "import")
    with Workspace.open(config) as ws:
        model = ws.load(MODEL, body["version"])
    assert model.name == "linear" and model.classes_ == [0, 1]
    np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_bad_files_exit_2_and_register_nothing(
    setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path
) -> None:
    cli, _config, rows = setup
    X, y = rows[WEATHER_FEATURES], rows["rain"]
    known = versions(cli)

    def refused(path: Path, *expected: str) -> None:
        text = " ".join(cli("deploy", MODEL, "--from-file", str(path), code=2).split())
        assert str(path) in text or path.name in text, text
        for e in expected:
            assert e in text, text

    junk = tmp_path / "model.bin"
    junk.write_bytes(b"\x00\x01not a model")
    refused(junk, "format is not one retrainer imports", "LightGBM", ".skops")
    pickled = tmp_path / "model.joblib"
    pickled.write_bytes(b"\x80\x04K\x01.")
    refused(pickled, "pickle", "never loads them", "skops")
    other = X.drop(columns=["visibility"]).assign(noise=np.arange(len(X)))
    refused(
        lightgbm_file(tmp_path / "wrong.txt", other, y),
        "features differ",
        "missing ['visibility']",
        "not in the spec ['noise']",
    )
    regressor = lightgbm_file(tmp_path / "reg.txt", X, y.astype(float), objective="regression")
    refused(regressor, "holds a regressor", "classification model")
    three = lightgbm_file(
        tmp_path / "three.txt", X, np.arange(len(X)) % 3, objective="multiclass", num_class=3
    )
    refused(three, "predicts 3 classes", "2 labels [0, 1]")
    import skops.io as sio
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sio.dump(GradientBoostingClassifier(n_estimators=3).fit(X, y), tmp_path / "gb.skops")
    refused(tmp_path / "gb.skops", "holds a GradientBoostingClassifier", "RandomForestClassifier")
    pca = make_pipeline(StandardScaler(), PCA(3), LogisticRegression()).fit(X, y)
    sio.dump(pca, tmp_path / "pca.skops")
    refused(tmp_path / "pca.skops", "Pipeline is StandardScaler, PCA, LogisticRegression")
    words = y.map({0: "dry", 1: "wet"})
    sio.dump(RandomForestClassifier(n_estimators=3).fit(X, words), tmp_path / "words.skops")
    refused(tmp_path / "words.skops", "classes ['dry', 'wet'] are not the labels", "[0, 1]")
    sio.dump(LogisticRegression().fit(X, words), tmp_path / "lwords.skops")
    refused(tmp_path / "lwords.skops", "classes ['dry', 'wet'] are not the labels", "[0, 1]")
    broken = tmp_path / "broken.txt"
    broken.write_text("tree\nversion=v4\nnum_class=oops\n")
    refused(broken, "does not load as lightgbm")
    assert versions(cli) == known
    assert "needs either a VERSION or --from-file" in cli(
        "deploy", MODEL, "1.0.0", "--from-file", str(broken), code=2
    )
    assert "needs either a VERSION or --from-file" in cli("deploy", MODEL, code=2)


def test_gate_rejection_keeps_the_champion_until_forced(
    setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path
) -> None:
    cli, _config, rows = setup
    rng = np.random.default_rng(0)
    noise = pd.Series(rng.permutation(rows["rain"].to_numpy()), index=rows.index)
    path = lightgbm_file(tmp_path / "poor.txt", rows[WEATHER_FEATURES], noise, rounds=30)
    body = json.loads(cli("deploy", MODEL, "--from-file", str(path), "--json", code=1))
    assert not body["deployed"] and body["gate"]["verdict"] == "reject"
    assert body["kind"] == "import" and body["role"] != "champion"
    assert "kept the champion" in body["outcome"]
    assert json.loads(cli("status", MODEL, "--json"))["champion"]["version"] == "1.0.0"
    text = cli("deploy", MODEL, body["version"], code=1)
    assert "--force" in text
    cli("deploy", MODEL, body["version"], "--force")
    history = json.loads(cli("history", MODEL, "--json"))
    assert history[-1]["to_version"] == body["version"] and history[-1]["forced"]


def test_forced_import_deploys_past_the_gate(
    setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path
) -> None:
    cli, _config, rows = setup
    noise = pd.Series(np.random.default_rng(1).permutation(rows["rain"].to_numpy()))
    path = lightgbm_file(tmp_path / "poor.txt", rows[WEATHER_FEATURES], noise, rounds=30)
    text = cli("deploy", MODEL, "--from-file", str(path), "--force")
    assert "gate reject" in text and "deployed 1.1.0" in text
    history = json.loads(cli("history", MODEL, "--json"))
    assert history[-1]["to_version"] == "1.1.0" and history[-1]["forced"]


def test_text_output_says_what_happened(
    setup: tuple[Cli, Path, pd.DataFrame], tmp_path: Path
) -> None:
    cli, _config, rows = setup
    path = lightgbm_file(tmp_path / "model.txt", rows[WEATHER_FEATURES], rows["rain"])
    text = " ".join(cli("deploy", MODEL, "--from-file", str(path)).split())
    assert "weather 1.1.0: imported lightgbm model model.txt (sha256" in text
    assert "gate pass vs 1.0.0: deployed 1.1.0" in text
    assert "note: the file knows classes by index" in text


def test_regressor_for_a_regression_model(
    config_file: Callable[..., Path],
    weather_csv: Callable[[str, str], Path],
    weather_df: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import xgboost as xgb

    monkeypatch.chdir(tmp_path)
    features = [f for f in WEATHER_FEATURES if f != "temperature"]
    config = config_file(
        task="regression",
        target="temperature",
        features={"numeric": features},
        params={"n_estimators": 20, "num_threads": 1},
    )

    def cli(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, ["-c", str(config), *args])
        assert res.exit_code == code, res.output
        return res.output

    cli("ingest", MODEL, str(weather_csv("1949-01-01", "1951-01-01")))
    cli("train", MODEL, "--deploy")
    cli("ingest", MODEL, str(weather_csv("1951-01-01", "1953-01-01")))
    rows = weather_df[weather_df["date"] < "1953-01-01"]
    X, y = rows[features], rows["temperature"]
    classifier = lightgbm_file(tmp_path / "clf.txt", X, (y > 0).astype(int))
    assert "holds a classifier" in " ".join(
        cli("deploy", MODEL, "--from-file", str(classifier), code=2).split()
    )
    booster = xgb.train(
        {"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(X.to_numpy(), y), 80
    )
    booster.save_model(str(tmp_path / "reg.json"))  # trained on a bare array: no names
    body = json.loads(cli("deploy", MODEL, "--from-file", str(tmp_path / "reg.json"), "--json"))
    assert (body["family"], body["kind"], body["deployed"]) == ("xgboost", "import", True)
    assert body["gate"]["metric"] == "mae" and body["gate"]["verdict"] == "pass"
    with Workspace.open(config) as ws:
        notes = ws.store.get_version(MODEL, body["version"]).details["import"]["notes"]
    assert any("stores no feature names" in n for n in notes)


def test_a_regression_pipeline_without_an_imputer_fills_a_missing_value_with_the_mean() -> None:
    """Pure: a StandardScaler-then-Ridge Pipeline read as the linear family predicts what it
    predicts; a missing value, which it never saw, counts as its column's mean."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from retrainer.families import family_class
    from retrainer.lifecycle.import_model import _linear

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 200)
    pipe = make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(X, y)
    native = _linear(pipe, [])
    assert (native.family, native.task, native.features) == (
        "linear",
        "regression",
        ["a", "b", "c"],
    )
    assert native.notes == [
        "it has no imputer: a missing value is filled with the scaler's mean of its column"
    ]
    model = family_class("linear").adopt("regression", ["a", "b", "c"], [], native.payload, X, y)
    np.testing.assert_allclose(model.predict(X), pipe.predict(X), rtol=1e-9)
    gap = X.head(1).assign(b=np.nan)
    at_mean = X.head(1).assign(b=pipe[0].mean_[1])
    np.testing.assert_allclose(model.predict(gap), pipe.predict(at_mean), rtol=1e-9)
