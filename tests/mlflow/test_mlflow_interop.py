"""`retrainer export --mlflow` and `retrainer import --mlflow` against a real MLflow tracking
server, started once for the test session on loopback (SQLite backend, artifacts in a temp folder).

MLflow is in the ``dev`` extra: when it is missing these tests fail (they never skip).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner, Result

import mlflow
from retrainer.cli.main import app
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.lifecycle.mlflow_io import using
from retrainer.plumbing.workspace import Workspace
from waits import SERVER_START, wait_until

PARAMS = {
    "lightgbm": {"n_estimators": 20, "num_threads": 1},
    "randomforest": {"n_estimators": 10, "n_jobs": 1},
    "linear": {},
}
runner = CliRunner()
# for the health poll: ``httpx.get()`` would build a client and its TLS context per call
HTTP = httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return HTTP.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The URL of the one MLflow server of the test session; stopped (its process group)
    afterwards. The workspace (``config``) is trained while the server boots."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (folder / "server.log").open("wb")
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(folder / "artifacts")]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            tail = (folder / "server.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"`mlflow server` exited with {proc.returncode}:\n{tail}")
        return _answers(url)

    try:
        request.getfixturevalue("config")  # the CLI trains its models meanwhile
        wait_until(up, f"the MLflow server ({' '.join(cmd)}) to answer {url}/health", SERVER_START)
        yield url
    finally:
        # killed, not stopped: a graceful stop waits out idle keep-alive connections (seconds)
        # and the server's data is scratch
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


def model_spec(family: str, features: list[str] | None = None) -> dict[str, Any]:
    return {
        "task": "classification",
        "target": "rain",
        "id_column": "day_id",
        "time_column": "date",
        "features": {"numeric": features or WEATHER_FEATURES},
        "family": family,
        "params": PARAMS[family],
        "training": {"window_days": 1500},
    }


@pytest.fixture(scope="session")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with three trained models (lightgbm, randomforest, linear) on two years of
    the bundled weather rows, and three models with the same specs to import into, whose champions
    learnt from the same rows and which then received a third year (the gate's rows)."""
    folder = tmp_path_factory.mktemp("workspace")
    models = {
        "lgb": model_spec("lightgbm"),
        "rf": model_spec("randomforest"),
        "lin": model_spec("linear"),
        "lgb_copy": model_spec("lightgbm"),
        "rf_copy": model_spec("randomforest"),
        "lin_copy": model_spec("linear"),
    }
    path = folder / "retrainer.yaml"
    data = {"store": "sqlite:///retrainer.db", "artifacts": "artifacts", "models": models}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    df = weather()
    rows, later = folder / "rows.csv", folder / "later.csv"
    df[(df["date"] >= "1949-01-01") & (df["date"] < "1951-01-01")].to_csv(rows, index=False)
    df[(df["date"] >= "1951-01-01") & (df["date"] < "1952-01-01")].to_csv(later, index=False)
    for name in models:
        cli(path, "ingest", name, rows)
        cli(path, "train", name, "--deploy")
    for name in ("lgb_copy", "rf_copy", "lin_copy"):
        cli(path, "ingest", name, later)
    return path


def cli(config: Path, *args: Any, code: int = 0) -> Result:
    res = runner.invoke(app, ["-c", str(config), *map(str, args)], env={"COLUMNS": "2000"})
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback is never an acceptable way to fail
    assert res.exit_code == code, f"exit {res.exit_code}, expected {code}:\n{res.output}"
    return res


def said(res: Result) -> str:
    return " ".join(res.output.split())


def holdout() -> pd.DataFrame:
    df = weather()
    return df[(df["date"] >= "1950-09-01") & (df["date"] < "1951-01-01")][WEATHER_FEATURES]


@pytest.mark.parametrize(
    ("source", "flavour"), [("lgb", "lightgbm"), ("rf", "sklearn"), ("lin", "sklearn")]
)
def test_export_then_import_round_trip(
    server: str, config: Path, source: str, flavour: str
) -> None:
    name = f"weather-{source}"
    done = json.loads(
        cli(
            config,
            "export",
            source,
            "1.0.0",
            "--mlflow",
            server,
            "--registered-name",
            name,
            "--json",
        ).stdout
    )
    assert done["flavour"] == flavour
    assert done["model_uri"] == f"models:/{name}/{done['registered_version']}"

    client = MlflowClient(server, server)
    with Workspace.open(config) as ws:
        v = ws.store.get_version(source, "1.0.0")
        ours = ws.load(source, "1.0.0")
    run = client.get_run(done["run_id"])
    assert run.data.metrics == pytest.approx(v.metrics)
    assert run.data.params == {k: str(x) for k, x in v.params.items()}
    tags = run.data.tags
    assert tags["retrainer.version_id"] == f"{source}:1.0.0"
    assert tags["retrainer.artifact_sha256"] == v.sha256
    assert tags["retrainer.family"] == v.family
    assert tags["retrainer.kind"] == "initial"
    assert tags["retrainer.train_start"] == v.train_start.isoformat()  # type: ignore[union-attr]
    registered = client.get_model_version(name, done["registered_version"])
    assert registered.run_id == done["run_id"]
    assert registered.tags["retrainer.artifact_sha256"] == v.sha256

    # the registered model predicts what retrainer predicts
    X = holdout()
    with using(mlflow, server):
        loaded = mlflow.pyfunc.load_model(done["model_uri"])
    got = np.asarray(loaded.predict(X))
    if flavour == "lightgbm":  # a LightGBM booster gives the probability of class 1
        np.testing.assert_allclose(got, ours.predict_proba(X)[:, 1], rtol=1e-9)
    else:
        assert got.tolist() == ours.predict(X).tolist()
    # and back into another model: the one import path, gated, with its MLflow lineage
    copy = f"{source}_copy"
    args = ["--mlflow", done["model_uri"], "--tracking-uri", server, "--force", "--json"]
    imported = json.loads(cli(config, "import", copy, *args).stdout)
    assert imported["kind"] == "import"
    assert imported["parent"] == "1.0.0"  # the champion it was gated against
    assert imported["gate"]["verdict"] in {"pass", "reject"}  # a real comparison
    assert imported["gate"]["n_rows"] >= 100  # the year the champion did not learn from
    assert imported["deployed"] is True
    assert imported["mlflow"]["run_id"] == done["run_id"]
    assert imported["mlflow"]["uri"] == done["model_uri"]
    with Workspace.open(config) as ws:
        again = ws.store.get_version(copy, imported["version"])
        assert again.details["import"]["mlflow"]["registered_name"] == name
        assert done["model_uri"] in again.reason
        assert ws.load(copy, again.version).predict(X).tolist() == ours.predict(X).tolist()


def test_import_refuses_a_model_whose_features_differ(server: str, config: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    df = weather().iloc[:400]
    columns = [*WEATHER_FEATURES[:-1], "humidity"]
    X = df[WEATHER_FEATURES[:-1]].assign(humidity=0.5)[columns]
    est = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, df["rain"])
    with using(mlflow, server), mlflow.start_run():
        mlflow.sklearn.log_model(
            est,
            name="model",
            serialization_format="skops",
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            registered_model_name="odd",
            pip_requirements=["scikit-learn"],  # not inferred: that loads the model in a subprocess
        )
    with Workspace.open(config) as ws:
        before = [x.version for x in ws.store.list_versions("rf_copy")]
    res = cli(
        config, "import", "rf_copy", "--mlflow", "models:/odd/1", "--tracking-uri", server, code=2
    )
    text = said(res)
    assert "features differ" in text
    assert f"missing ['{WEATHER_FEATURES[-1]}']" in text
    assert "not in the spec ['humidity']" in text
    with Workspace.open(config) as ws:
        assert [x.version for x in ws.store.list_versions("rf_copy")] == before


def test_a_server_that_does_not_answer_is_named_with_the_password_hidden(config: Path) -> None:
    port = free_port()  # closed again: nothing listens there
    uri = f"http://alice:s3cret-pw@127.0.0.1:{port}"
    for args in (
        ["export", "lgb", "1.0.0", "--mlflow", uri],
        ["import", "lgb_copy", "--mlflow", "models:/weather/1", "--tracking-uri", uri],
    ):
        text = said(cli(config, *args, code=1))
        assert f"http://alice:***@127.0.0.1:{port}" in text
        assert "did not answer" in text
        assert "s3cret-pw" not in text


def test_a_river_model_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "retrainer.yaml"
    spec = {**model_spec("lightgbm"), "family": "river", "params": {}}
    data = {"store": "sqlite:///retrainer.db", "artifacts": "artifacts", "models": {"r": spec}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    df = weather()
    rows = tmp_path / "rows.csv"
    df[(df["date"] >= "1949-01-01") & (df["date"] < "1950-01-01")].to_csv(rows, index=False)
    cli(path, "ingest", "r", rows)
    cli(path, "train", "r", "--deploy")
    text = said(cli(path, "export", "r", "1.0.0", "--mlflow", "http://127.0.0.1:1", code=1))
    assert "river models have no MLflow flavour" in text
    assert "randomforest, lightgbm, xgboost, catboost" in text


def test_without_mlflow_the_commands_say_how_to_install_it(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    res = cli(config, "export", "lgb", "1.0.0", "--mlflow", "http://127.0.0.1:1", code=2)
    assert "pip install 'retrainer[mlflow]'" in said(res)


def test_a_model_uri_of_another_scheme_is_bad_input(config: Path) -> None:
    res = cli(
        config,
        "import",
        "lgb_copy",
        "--mlflow",
        "s3://bucket/model",
        "--tracking-uri",
        "http://127.0.0.1:1",
        code=2,
    )
    assert "models:/<name>/<version>" in said(res)


def test_help_does_not_import_mlflow() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom retrainer.cli.main import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "assert 'mlflow' not in sys.modules, 'retrainer --help imported mlflow'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
