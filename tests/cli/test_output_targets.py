"""Outputs a user names: `predict --out` and `report --out` into a pipe (or /dev/stdout) write
into it and leave it a pipe; into a folder is a clear error; a new file appears whole."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from clihelp import MODEL, Cli, text, write_config

from weather_spec import weather_model

PARAMS = {"n_estimators": 20, "num_threads": 1}


@pytest.fixture
def trained(tmp_path: Path, weather_csv: Callable[[str, str], Path]) -> Cli:
    cli = Cli(write_config(tmp_path / "retrainer.yaml", {MODEL: weather_model(params=PARAMS)}))
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    cli("train", MODEL, "--deploy")
    return cli


def _drain(fifo: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with fifo.open("rb") as fh:
            into.append(fh.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


@pytest.mark.parametrize("command", ["predict", "report"])
def test_output_into_a_pipe_stays_a_pipe(
    trained: Cli, tmp_path: Path, weather_csv: Callable[[str, str], Path], command: str
) -> None:
    fifo = tmp_path / ("scores.csv" if command == "predict" else "report.html")
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _drain(fifo, got)
    if command == "predict":
        trained("predict", MODEL, weather_csv("1951-01-01", "1951-02-01"), "--out", fifo)
    else:
        trained("report", MODEL, "--out", fifo)
    reader.join(timeout=60)  # the writer closed the pipe long before; generous on a busy box
    assert not reader.is_alive(), "the reader never saw the end of the pipe"
    assert fifo.is_fifo()  # not replaced by a regular file
    assert got and (b"prediction" in got[0] if command == "predict" else b"<html" in got[0])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_output_into_a_folder_is_a_clear_error(
    trained: Cli, tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    (tmp_path / "out").mkdir()
    res = trained(
        "predict", MODEL, weather_csv("1951-01-01", "1951-02-01"), "--out", tmp_path / "out", code=2
    )
    assert f"predict --out: {str(tmp_path / 'out')!r} is a folder" in text(res)
    assert list((tmp_path / "out").iterdir()) == []
