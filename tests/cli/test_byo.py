"""Bring your own model end to end, with the files of docs/byo.md as they stand: `retrainer
train`, `retrainer predict` and one prediction served over loopback, all through the feature
step; then the bad inputs (exit 2, nothing written) and the fine-tune refusal of an estimator
that can neither partial_fit nor warm-start."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
import yaml
from clihelp import Cli, text

from retrainer.core.clock import utcnow
from retrainer.core.spec import load_spec
from retrainer.lifecycle.maintain import build_state
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app
from waits import SERVER_START, wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "byo.md"
MODEL = "loans"


def doc_files() -> dict[str, str]:
    """The page's code blocks whose first line is ``# <path>``, by path."""
    blocks = re.findall(r"^```(?:python|yaml)\n(.*?)^```", DOC.read_text("utf-8"), re.M | re.S)
    return {b.split("\n", 1)[0][2:].strip(): b for b in blocks if b.startswith("# ")}


def loans(n: int, seed: int, start: str = "2024-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.uniform(1000, 9000, n)
    debt = rng.uniform(100, 5000, n)
    grade = rng.choice(["A", "B", "C"], n)
    risk = debt / income + 0.3 * (grade == "C") + rng.normal(0, 0.1, n)
    return pd.DataFrame(
        {
            "loan_id": [f"L{seed}-{i}" for i in range(n)],
            "opened": pd.date_range(start, periods=n, freq="6h"),
            "income": income,
            "debt": debt,
            "grade": grade,
            "defaulted": np.where(risk > 0.6, "yes", "no"),
        }
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """docs/byo.md's package and spec in an empty folder, the package importable."""
    for name, body in doc_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in [m for m in list(__import__("sys").modules) if m.split(".")[0] == "mypkg"]:
        monkeypatch.delitem(__import__("sys").modules, mod)
    loans(800, seed=0).to_csv(tmp_path / "loans.csv", index=False)
    return Cli(tmp_path / "retrainer.yaml")


def edit_spec(cli: Cli, **model: Any) -> None:
    spec = yaml.safe_load(cli.config.read_text())
    spec["models"][MODEL].update(model)
    cli.config.write_text(yaml.safe_dump(spec))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_train_predict_and_serve_through_the_feature_step(project: Cli) -> None:
    project("ingest", MODEL, "loans.csv")
    project("train", MODEL, "--deploy")
    [version] = project.json("versions", MODEL)
    details = _details(project)
    assert details["feature_step"]["path"] == "mypkg.features:add_ratios"
    assert len(details["feature_step"]["sha256"]) == 64
    assert (
        details["estimator"]["final"] == "sklearn.linear_model._stochastic_gradient.SGDClassifier"
    )
    assert version["family"] == "sklearn"
    assert version["feature_step"] == details["feature_step"]  # shown by `versions --json`
    assert version["estimator"]["path"] == "mypkg.models:make_pipeline_model"
    new = loans(20, seed=5, start="2024-08-01").drop(columns=["defaulted"])
    new.to_csv("new_loans.csv", index=False)
    project("predict", MODEL, "new_loans.csv", "--out", "scored.csv")
    scored = pd.read_csv("scored.csv")
    assert len(scored) == 20 and set(scored["prediction"]) <= {"yes", "no"}
    first = new.iloc[0]
    row = {"loan_id": first["loan_id"], "income": float(first["income"]),
           "debt": float(first["debt"]), "grade": first["grade"]}  # fmt: skip
    served = _serve_one(project, row)
    assert served["predictions"] == [scored["prediction"].iloc[0]]
    assert served["probabilities"][0]["yes"] == pytest.approx(scored["proba_yes"].iloc[0])
    with Workspace(load_spec(project.config, environ={})) as ws:  # SGD: partial_fit
        assert build_state(ws, MODEL, utcnow()).capabilities.warm_start
    loans(300, seed=9, start="2024-07-20").to_csv("more.csv", index=False)
    project("ingest", MODEL, "more.csv")
    tuned = project.json("fine-tune", MODEL)
    assert tuned["version"] == "1.0.1", tuned


def _details(cli: Cli) -> dict[str, Any]:
    with Workspace(load_spec(cli.config, environ={})) as ws:
        [v] = ws.store.list_versions(MODEL)
        return dict(v.details)


def _serve_one(cli: Cli, row: dict[str, Any]) -> dict[str, Any]:
    app = create_app(cli.config, spool=cli.config.parent / "spool")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: srv.started or not thread.is_alive(), "the server to start", SERVER_START
        )
        assert srv.started, "the server thread ended without starting"
        url = f"http://127.0.0.1:{port}/v1/models/{MODEL}/predict"
        resp = httpx.post(url, json={"row": row}, timeout=60)
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out
    finally:
        srv.should_exit = True
        thread.join(SERVER_START)


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"estimator": "mypkg.nothing:make"}, "module 'mypkg.nothing' cannot be imported"),
        ({"estimator": "mypkg.models:make_pipline"}, "has no attribute 'make_pipline'. Found: "),
        ({"estimator": "mypkg.features:add_ratios"}, "add_ratios"),
        ({"estimator": "sklearn.linear_model:Ridge"}, "gave sklearn.linear_model._ridge.Ridge"),
    ],
)
def test_a_bad_estimator_exits_2_naming_it_before_anything_is_written(
    project: Cli, params: dict[str, str], found: str
) -> None:
    project("ingest", MODEL, "loans.csv")
    edit_spec(project, params=params)
    for args in (["--dry-run"], []):  # the plan imports and checks it too
        res = project("train", MODEL, *args, code=2)
        assert repr(params["estimator"]) in text(res) and found in text(res)
    assert project.json("versions", MODEL) == []
    assert not list(Path("artifacts").rglob("*.zip"))


def test_a_step_that_drops_rows_refuses_training(project: Cli) -> None:
    Path("mypkg/bad.py").write_text("def first_rows(df):\n    return df.head(3)\n")
    project("ingest", MODEL, "loans.csv")
    features = yaml.safe_load(project.config.read_text())["models"][MODEL]["features"]
    edit_spec(project, features={**features, "transform": "mypkg.bad:first_rows"})
    res = project("train", MODEL, code=2)
    assert "feature step 'mypkg.bad:first_rows'" in text(res)
    assert "changed the number of rows" in text(res)
    assert project.json("versions", MODEL) == []


def test_a_plain_estimator_is_not_fine_tuned_and_the_policy_knows(project: Cli) -> None:
    Path("mypkg/plain.py").write_text(
        "from sklearn.compose import make_column_transformer\n"
        "from sklearn.neighbors import KNeighborsClassifier\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import OneHotEncoder\n\n\n"
        "def model():\n"
        "    grade = (OneHotEncoder(handle_unknown='ignore'), ['grade'])\n"
        "    cols = make_column_transformer(grade, remainder='passthrough')\n"
        "    return make_pipeline(cols, KNeighborsClassifier())\n"
    )
    features = {"numeric": ["income", "debt"], "categorical": ["grade"]}  # no step: no NaN
    edit_spec(project, params={"estimator": "mypkg.plain:model"}, features=features)
    project("ingest", MODEL, "loans.csv")
    project("train", MODEL, "--deploy")
    with Workspace(load_spec(project.config, environ={})) as ws:
        assert not build_state(ws, MODEL, utcnow()).capabilities.warm_start
    res = project("fine-tune", MODEL, code=1)
    assert "KNeighborsClassifier" in text(res) and "full retrain" in text(res)
