"""With RETRAINER_SIGNING_KEY set, every load needs a valid signature: an unsigned version (its
HMAC removed, or made before the key) is refused by `predict` on the CLI and on the server;
`retrainer sign` signs the versions a user made before turning the key on."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import update
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app
from retrainer.store import schema as t

PARAMS = {"n_estimators": 10, "num_threads": 1}
KEY = "a signing key"
runner = CliRunner()


def cli(config: Path, *args: str, code: int = 0) -> str:
    res = runner.invoke(app, ["-c", str(config), *args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, f"exit {res.exit_code}, expected {code}:\n{res.output}"
    return " ".join(res.output.split())


@pytest.fixture
def config(
    config_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """weather 1.0.0 (champion) and 1.1.0, trained without a key; rows to score in new.csv."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    path = config_file(params=PARAMS)
    df = weather()
    with Workspace(load_spec(path, environ={})) as ws:
        ingest_frame(ws, "weather", df[(df.date >= "1949-01-01") & (df.date < "1951-01-01")])
        train(ws, "weather", deploy=True)
        ingest_frame(ws, "weather", df[(df.date >= "1951-01-01") & (df.date < "1951-07-01")])
        train(ws, "weather")
    df[df.date >= "1952-01-01"].head(5).drop(columns=["rain"]).to_csv(tmp_path / "new.csv")
    return path


def predict(config: Path, code: int = 0) -> str:
    folder = config.parent
    return cli(config, "predict", "weather", str(folder / "new.csv"), "-o", "o.csv", code=code)


@contextmanager
def served(config: Path) -> Iterator[str]:
    """The REST app on loopback (its own port), started in this process. A champion that does
    not verify is not loaded: predict answers 409 naming it (the reason is in the log and the
    reload_failed alert)."""
    application = create_app(config, log_predictions=False, scheduler=False)
    srv = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # start-up takes well under a second
    while not srv.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in 60 s"
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(30)


ROW = {f: 1.0 for f in WEATHER_FEATURES}


def test_versions_made_before_the_key_are_refused_until_signed(
    config: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert "1.0.0" in predict(config)  # no key: the hash check alone
    (config.parent / "o.csv").unlink()
    cli(config, "sign", "weather", code=2)  # no key to sign with
    monkeypatch.setenv("RETRAINER_SIGNING_KEY", KEY)
    out = predict(config, code=1)
    assert "version 1.0.0" in out and "is unsigned" in out and "retrainer sign weather" in out
    assert not (config.parent / "o.csv").exists()
    with served(config) as url:
        got = httpx.post(f"{url}/v1/models/weather/predict", json={"row": ROW}, timeout=30)
    assert got.status_code == 409 and "failed verification" in got.json()["message"]
    assert "version 1.0.0 at" in caplog.text and "is unsigned" in caplog.text
    signed = json.loads(cli(config, "sign", "weather", "--json"))
    assert signed == {"model": "weather", "signed": ["1.0.0", "1.1.0"], "verified": [],
                      "refused": {}}  # fmt: skip
    assert "1.0.0" in predict(config)
    assert "signed 0 version(s); 2 already signed" in cli(config, "sign", "weather")
    with served(config) as url:
        got = httpx.post(f"{url}/v1/models/weather/predict", json={"row": ROW}, timeout=30)
    assert got.status_code == 200, got.text
    monkeypatch.setenv("RETRAINER_SIGNING_KEY", "another key")
    out = cli(config, "sign", "weather", code=1)  # never overwrites a signature
    assert "2 version(s) of 'weather' were not signed" in out and "HMAC" in out


def test_a_replaced_artifact_with_its_hash_edited_and_hmac_removed_is_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone who can write the store and the artifact folder (not the key) replaces the
    champion's file with a model of their own, sets the row's SHA-256 to match and its HMAC
    to NULL: with the key set, the CLI and the server refuse it. Without the key the edited
    hash matches and the file loads: the hash detects damage, not tampering."""
    monkeypatch.setenv("RETRAINER_SIGNING_KEY", KEY)
    cli(config, "sign", "weather")
    with Workspace.open(config) as ws:
        champion = ws.store.get_version("weather", "1.0.0")
        other = ws.store.get_version("weather", "1.1.0")
        evil = ws.artifact_bytes(other)  # a loadable model that is not the champion
        Path(ws.artifacts.location(champion.artifact_uri)).write_bytes(evil)
        with ws.store.write() as conn:
            conn.execute(
                update(t.versions)
                .where(t.versions.c.model == "weather", t.versions.c.version == "1.0.0")
                .values(sha256=hashlib.sha256(evil).hexdigest(), hmac=None)
            )
    out = predict(config, code=1)
    assert "version 1.0.0" in out and "is unsigned" in out
    with served(config) as url:
        got = httpx.post(f"{url}/v1/models/weather/predict", json={"row": ROW}, timeout=30)
    assert got.status_code == 409 and "failed verification" in got.json()["message"]
    assert "version 1.0.0 at" in caplog.text and "is unsigned" in caplog.text
    monkeypatch.delenv("RETRAINER_SIGNING_KEY")  # without a key the hash matches: it loads
    assert "1.0.0" in predict(config)
