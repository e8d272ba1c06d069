"""Artifacts and backups on S3: a real S3 API (moto's server on a loopback port, started here).

The workspace names only ``s3://bucket/prefix``; the endpoint and the credentials come from the
environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), as in production,
and the secret never shows in what a command prints.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from retrainer.cli.main import app
from weather_spec import weather_model

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

SECRET = "s3-test-secret-7f3a9c"  # must never appear in any output
BUCKET = "retrainer-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback with one bucket; the environment that reaches it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "retrainer-test-key",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()  # none made before these variables were set
    s3fs.S3FileSystem().mkdir(BUCKET)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def _bucket() -> Any:
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()  # the test reads what the commands wrote, never a cached listing
    return fs


@pytest.fixture
def s3_config(tmp_path: Path, s3_env: dict[str, str]) -> Callable[[str, str], Path]:
    """Write a spec with a SQLite store in tmp_path and artifacts at ``s3://<bucket>/<prefix>``."""

    def write(prefix: str, name: str = "retrainer.yaml", bucket: str = BUCKET) -> Path:
        path = tmp_path / name
        data = {
            "store": f"sqlite:///{tmp_path / (name + '.db')}",
            "artifacts": f"s3://{bucket}/{prefix}",
            "models": {
                "weather": weather_model(params={"n_estimators": 20, "num_threads": 1}),
            },
        }
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def _run(config: Path, *args: str) -> Any:
    res = CliRunner().invoke(app, ["-c", str(config), *args])
    assert SECRET not in res.output
    return res


def test_train_predict_tamper_backup_restore_on_s3(
    s3_config: Callable[..., Path],
    weather_csv: Callable[[str, str], Path],
    tmp_path: Path,
) -> None:
    config = s3_config("arts-a")
    rows = weather_csv("1949-01-01", "1951-01-01")
    for args in (["ingest", "weather", str(rows)], ["train", "weather", "--deploy"]):
        res = _run(config, *args)
        assert res.exit_code == 0, res.output

    fs = _bucket()
    objects = fs.find(f"{BUCKET}/arts-a")  # no temporary or probe object left beside it
    assert len(objects) == 1 and objects[0].endswith(".rtm"), objects
    assert not list((tmp_path).glob("**/*.rtm"))  # and nowhere on the local disk

    res = _run(config, "predict", "weather", str(rows), "--out", str(tmp_path / "p.csv"))
    assert res.exit_code == 0, res.output  # loaded from S3, its hash checked
    assert (tmp_path / "p.csv").read_text().count("\n") > 100

    # backup to the bucket, restore into a fresh store whose artifacts live elsewhere
    res = _run(config, "backup", f"s3://{BUCKET}/backups/x.tar.gz", "--json")
    assert res.exit_code == 0, res.output
    assert fs.exists(f"{BUCKET}/backups/x.tar.gz")
    fresh = s3_config("arts-b", name="fresh.yaml")
    res = _run(fresh, "restore", f"s3://{BUCKET}/backups/x.tar.gz")
    assert res.exit_code == 0, res.output
    assert "1 artifacts" in res.output
    res = _run(fresh, "predict", "weather", str(rows), "--out", str(tmp_path / "q.csv"))
    assert res.exit_code == 0, res.output
    p_lines = (tmp_path / "p.csv").read_text().splitlines()
    q_lines = (tmp_path / "q.csv").read_text().splitlines()
    assert (p_lines[0], len(p_lines)) == (q_lines[0], len(q_lines))

    # a changed object in the bucket is refused, as a changed local file is
    fs.pipe_file(objects[0], fs.cat_file(objects[0]) + b"tampered")
    res = _run(config, "predict", "weather", str(rows), "--out", str(tmp_path / "r.csv"))
    assert res.exit_code == 1, res.output
    assert "does not match its recorded SHA-256" in res.output
    assert f"s3://{BUCKET}/arts-a/weather/" in res.output
    assert not (tmp_path / "r.csv").exists()

    # a backup URL that does not exist: exit 2 naming it
    empty = s3_config("arts-c", name="empty.yaml")
    res = _run(empty, "restore", f"s3://{BUCKET}/backups/missing.tar.gz")
    assert res.exit_code == 2, res.output
    assert "missing.tar.gz" in res.output


def test_unwritable_bucket_fails_before_training_and_never_prints_the_secret(
    s3_config: Callable[..., Path],
    weather_csv: Callable[[str, str], Path],
    s3_env: dict[str, str],
) -> None:
    config = s3_config("arts", bucket="no-such-bucket")
    rows = weather_csv("1949-01-01", "1950-01-01")
    res = _run(config, "ingest", "weather", str(rows))  # rows go to the SQL store: fine
    assert res.exit_code == 0, res.output

    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env.update(s3_env)
    proc = subprocess.run(
        [sys.executable, "-m", "retrainer.cli.main", "-c", str(config), "train", "weather"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "s3://no-such-bucket/arts" in proc.stderr + proc.stdout
    assert "cannot be written" in proc.stderr + proc.stdout
    assert SECRET not in proc.stdout + proc.stderr
    res = _run(config, "versions", "weather", "--json")
    assert '"version"' not in res.output  # nothing was trained or registered
    assert not _bucket().exists("no-such-bucket")  # and no bucket was created

    res = _run(config, "backup", "s3://no-such-bucket/backups/b.tar.gz")  # secret: see _run
    assert res.exit_code == 1, res.output
    assert "Cannot write the backup to s3://no-such-bucket/backups/b.tar.gz" in res.output


def test_training_rows_read_in_place_from_the_bucket(
    tmp_path: Path, s3_env: dict[str, str], weather_df: Any
) -> None:
    """The rows themselves may live in object storage: a Parquet source on S3 is read in place
    (the SQL store keeps only what feedback adds)."""
    fs = _bucket()
    part = weather_df[(weather_df["date"] >= "1949-01-01") & (weather_df["date"] < "1951-01-01")]
    with fs.open(f"{BUCKET}/lake/part-0.parquet", "wb") as fh:
        part.to_parquet(fh, index=False)
    path = tmp_path / "lake.yaml"
    data = {
        "store": f"sqlite:///{tmp_path / 'lake.db'}",
        "artifacts": f"s3://{BUCKET}/arts-lake",
        "models": {
            "weather": weather_model(
                params={"n_estimators": 20, "num_threads": 1},
                data={"source": "parquet", "path": f"s3://{BUCKET}/lake/*.parquet"},
            )
        },
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = _run(path, "train", "weather", "--json")
    assert res.exit_code == 0, res.output
    body = json.loads(res.output[res.output.index("{") :])
    assert body["rows"] == len(part) == 730
