"""Artifact URIs are relative to the artifact folder: a copied workspace reads and deletes its
own files, never the original's; migration 0006 relativizes the absolute URIs of old stores."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.errors import ConfigError
from retrainer.core.spec import load_spec, parse_spec
from retrainer.datasets import weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.store import SqlStore
from retrainer.store import schema as t

PARAMS = {"n_estimators": 10, "num_threads": 1}
runner = CliRunner()


def cli(config: Path, *args: str, code: int = 0) -> str:
    res = runner.invoke(app, ["-c", str(config), *args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, f"exit {res.exit_code}, expected {code}:\n{res.output}"
    return " ".join(res.output.split())


def _workspace(folder: Path, config_file: Callable[..., Path]) -> Path:
    """weather 1.0.0 (champion) and 1.1.0, retention keep 1, config with relative paths."""
    config = config_file(params=PARAMS, retention={"keep": 1})
    folder.mkdir()
    shutil.move(config, folder / "retrainer.yaml")
    config = folder / "retrainer.yaml"
    df = weather()
    with Workspace(load_spec(config, environ={})) as ws:
        ingest_frame(ws, "weather", df[(df.date >= "1949-01-01") & (df.date < "1951-01-01")])
        train(ws, "weather", deploy=True)
        ingest_frame(ws, "weather", df[(df.date >= "1951-01-01") & (df.date < "1951-07-01")])
        train(ws, "weather")
    return config


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.rtm")}


def _make_absolute(config: Path) -> None:
    """Turn the store into one written before 0006: absolute URIs, schema at 0005."""
    spec = load_spec(config, environ={})
    store = SqlStore(spec.store)
    with store.write() as conn:
        for r in conn.execute(select(t.versions.c.id, t.versions.c.artifact_uri)).all():
            conn.execute(
                update(t.versions)
                .where(t.versions.c.id == r.id)
                .values(artifact_uri=f"{spec.artifacts}/{r.artifact_uri}")
            )
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0005'")
    store.close()


@pytest.mark.parametrize("made_before_0006", [False, True])
def test_a_copied_workspace_never_touches_the_original(
    tmp_path: Path, config_file: Callable[..., Path], made_before_0006: bool
) -> None:
    original = _workspace(tmp_path / "original", config_file)
    if made_before_0006:
        _make_absolute(original)
    before = _files(original.parent)
    assert len(before) == 2
    copy = tmp_path / "copy"
    shutil.copytree(original.parent, copy)
    config = copy / "retrainer.yaml"
    df = weather()
    part = df[(df.date >= "1951-07-01") & (df.date < "1952-01-01")]
    part.to_csv(copy / "more.csv", index=False)
    cli(config, "ingest", "weather", str(copy / "more.csv"))
    cli(config, "train", "weather")  # 1.2.0; retention (keep 1 + champion) deletes 1.1.0
    with Workspace.open(config) as ws:
        versions = {v.version: v for v in ws.store.list_versions("weather")}
        assert versions["1.1.0"].status == "deleted"
        assert all(not v.artifact_uri.startswith(("/", "file:")) for v in versions.values())
    assert _files(original.parent) == before  # the original's artifacts are all there
    assert len(_files(copy)) == 2  # the copy deleted its own 1.1.0
    df[df.date >= "1952-01-01"].head(5).drop(columns=["rain"]).to_csv(copy / "new.csv")
    out = cli(config, "predict", "weather", str(copy / "new.csv"), "--out", str(copy / "o.csv"))
    assert "1.0.0" in out and (copy / "o.csv").exists()
    with Workspace.open(original) as ws:  # and the original still predicts from its own
        assert ws.load("weather", "1.1.0") is not None


def test_migration_0006_relativizes_only_uris_of_the_rows_own_shape(store_url: str) -> None:
    """Absolute URIs ending in the row's <model>/<sha256>.rtm keep just that; anything else is
    left for the artifact store to refuse."""
    from retrainer.core.clock import utcnow
    from retrainer.core.entities import ModelVersion

    store = SqlStore(store_url)
    sha = "d" * 64
    uris = {
        f"/srv/old/artifacts/m/{sha}.rtm": f"m/{sha}.rtm",
        f"file:///srv/old/artifacts/m/{sha}.rtm": f"m/{sha}.rtm",
        f"s3://bucket/models/m/{sha}.rtm": f"m/{sha}.rtm",
        f"m/{sha}.rtm": f"m/{sha}.rtm",
        f"/srv/old/artifacts/other/{sha}.rtm": f"/srv/old/artifacts/other/{sha}.rtm",
        "/etc/passwd": "/etc/passwd",
    }
    now = utcnow()
    for uri in uris:
        draft = ModelVersion(
            model="m", version="0.0.0", parent=None, family="lightgbm", params={},
            created_at=now, created_by="test", reason="", kind="train", train_start=now,
            train_end=now, n_rows=1, fingerprint="0" * 64, feature_schema={}, metrics={},
            artifact_uri=uri, sha256=sha, hmac=None, size_bytes=1, details={},
        )  # fmt: skip
        store.register(draft, "minor", deploy=False, reason="", triggered_by="test")
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0005'")
    store.close()
    store = SqlStore(store_url)  # migrates to 0006
    try:
        got = [v.artifact_uri for v in sorted(store.list_versions("m"), key=lambda v: v.semver)]
        assert got == list(uris.values())
    finally:
        store.close()


def test_a_model_name_that_reaches_a_path_is_refused_in_the_spec() -> None:
    body = {"task": "regression", "target": "y", "id_column": "id", "time_column": "t",
            "features": {"numeric": ["x"]}}  # fmt: skip
    for name in ("churn\n", "../x", "a/b"):
        with pytest.raises(ConfigError, match="not a valid model name"):
            parse_spec({"models": {name: body}}, environ={})
