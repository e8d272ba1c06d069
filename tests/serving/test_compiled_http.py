"""``serving.backend: onnx`` end to end: a real server on 127.0.0.1 scores through ONNX
Runtime, answers what the native model answers, and says which backend serves in
``/v1/models/{name}/status``; a compiled model that fails its check is served native."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn
import yaml
from servehelp import Served, free_port, spec_dict

pytest.importorskip("onnxruntime", reason="the compiled extra: pip install 'retrainer[compiled]'")

from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.families import FamilyModel
from retrainer.families.compiled import CompiledModel
from retrainer.lifecycle.predictor import load_predictor
from retrainer.plumbing.workspace import Workspace
from retrainer.serving import compiled as serving_compiled
from retrainer.serving.app import create_app
from waits import SERVER_START, wait_until

AUTH = {"Authorization": "Bearer s3cret"}


def onnx_config(trained: Path, folder: Path) -> Path:
    """A copy of the trained store whose weather model asks for the onnx backend."""
    shutil.copy(trained / "ws.db", folder / "ws.db")
    shutil.copytree(trained / "artifacts", folder / "artifacts")
    spec = spec_dict(folder)
    spec["models"]["weather"]["serving"]["backend"] = "onnx"
    spec["models"]["sales"]["serving"]["backend"] = "onnx"
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(spec))
    return config


def start(config: Path) -> tuple[Served, uvicorn.Server, threading.Thread]:
    app = create_app(config, token="s3cret", spool=config.parent / "spool", flush_seconds=0.05)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started or not thread.is_alive(), "the server to start", SERVER_START)
    assert srv.started, "the server thread ended without starting"
    return Served(f"http://127.0.0.1:{port}", app, config), srv, thread


@pytest.fixture(scope="module")
def onnx_server(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served, srv, thread = start(onnx_config(trained, tmp_path_factory.mktemp("onnx")))
    yield served
    srv.should_exit = True
    thread.join(SERVER_START)


def status(served: Served, model: str) -> dict[str, Any]:
    with served.client() as c:
        got = c.get(f"/v1/models/{model}/status", headers=AUTH)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def ready(served: Served, model: str) -> bool:
    return bool(status(served, model)["served"]["champion"])


def rows(n: int) -> list[dict[str, float]]:
    df = weather()
    df = df[(df.date >= "1952-01-01")].head(n)
    return [{k: float(r[k]) for k in WEATHER_FEATURES} for _, r in df.iterrows()]


def test_status_says_onnx_serves(onnx_server: Served) -> None:
    wait_until(lambda: ready(onnx_server, "weather"), "weather's champion to load")
    backends = status(onnx_server, "weather")["served"]["backends"]
    champion = backends["champion"]
    assert champion["backend"] == "onnx" and champion["requested"] == "onnx"
    assert champion["max_abs_diff"] <= 1e-5 and champion["verified_rows"] > 0
    assert champion["reason"] is None
    # a categorical feature (LightGBM's category splits) compiles as well
    wait_until(lambda: ready(onnx_server, "sales"), "sales' champion to load")
    assert status(onnx_server, "sales")["served"]["backends"]["champion"]["backend"] == "onnx"


def test_onnx_answers_what_native_answers(onnx_server: Served) -> None:
    wait_until(lambda: ready(onnx_server, "weather"), "weather's champion to load")
    batch = rows(100)
    with onnx_server.client() as c:
        got = c.post("/v1/models/weather/predict", json={"rows": batch[:50]}, headers=AUTH)
        one = c.post("/v1/models/weather/predict", json={"row": batch[50]}, headers=AUTH)
    assert got.status_code == 200 and one.status_code == 200, (got.text, one.text)
    with Workspace(load_spec(onnx_server.config, environ={})) as ws:
        champion = ws.store.roles("weather").champion
        assert champion is not None
        native = load_predictor(ws, ws.store.get_version("weather", champion))
    labels, proba = native.predict(native.model.schema_.matrix(pd.DataFrame(batch[:51])))
    assert proba is not None
    served_labels = [*got.json()["predictions"], *one.json()["predictions"]]
    served_proba = [*got.json()["probabilities"], *one.json()["probabilities"]]
    assert served_labels == labels
    for served_p, p in zip(served_proba, proba, strict=True):
        as_array = np.array([served_p[str(k)] for k in native.model.classes_])
        assert np.abs(as_array - p).max() <= 1e-5


def test_a_compiled_model_that_fails_its_check_is_served_native(
    trained: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrupt compiled model (a graph answering a constant) is refused at load; the
    server serves the native model and /status says why."""
    real = serving_compiled.compile_model

    def corrupt(model: FamilyModel) -> CompiledModel:
        good = real(model)
        good.predict_raw = lambda X: np.full((len(X), 2), 0.5)  # type: ignore[method-assign]
        return good

    monkeypatch.setattr(serving_compiled, "compile_model", corrupt)
    served, srv, thread = start(onnx_config(trained, tmp_path_factory.mktemp("corrupt")))
    try:
        wait_until(lambda: ready(served, "weather"), "weather's champion to load")
        champion = status(served, "weather")["served"]["backends"]["champion"]
        assert (champion["backend"], champion["requested"]) == ("native", "onnx")
        assert "serving.compiled_tolerance" in champion["reason"]
        with served.client() as c:
            got = c.post("/v1/models/weather/predict", json={"row": rows(1)[0]}, headers=AUTH)
        assert got.status_code == 200
        assert got.json()["probabilities"][0] != {"0": 0.5, "1": 0.5}
    finally:
        srv.should_exit = True
        thread.join(SERVER_START)
