"""A classifier's labels keep one type whatever a file holds: one bad label in a CSV is a
rejected line naming the value (the file's other labels stay integers and training works);
rows repeating an id and time within a file are counted as duplicates, the first one kept,
as across files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from clihelp import MODEL, Cli, text, write_config

from retrainer.core.spec import load_spec
from retrainer.plumbing.workspace import Workspace
from weather_spec import weather_model

PARAMS = {"n_estimators": 20, "num_threads": 1}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def stored(cfg: Path) -> pd.DataFrame:
    with Workspace(load_spec(cfg, environ={})) as ws:
        return ws.store.training_frame(MODEL)


def test_one_bad_label_is_a_rejected_line_and_training_still_works(
    tmp_path: Path, weather_df: pd.DataFrame, weather_csv: Callable[[str, str], Path]
) -> None:
    cfg = write_config(tmp_path / "retrainer.yaml", {MODEL: weather_model(params=PARAMS)})
    cli = Cli(cfg)
    cli("ingest", MODEL, weather_csv("1949-01-01", "1950-01-01"))
    part = weather_df[(weather_df.date >= "1950-01-01") & (weather_df.date < "1951-01-01")]
    part = part.astype({"rain": object}).reset_index(drop=True)
    part.loc[10, "rain"] = "yes"
    bad = tmp_path / "one_bad_label.csv"
    part.to_csv(bad, index=False)
    msg = text(cli("ingest", MODEL, bad))
    assert f"{len(part) - 1} inserted, 0 duplicates, 1 rejected" in msg
    assert "line 12: label 'rain' = 'yes' is not a whole number" in msg
    rows = stored(cfg)
    assert rows["target"].dtype == "int64" and set(rows["target"]) == {0, 1}
    cli("train", MODEL)


def test_rows_repeating_an_id_and_time_in_one_file_are_counted_and_the_first_kept(
    tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    cfg = write_config(tmp_path / "retrainer.yaml", {MODEL: weather_model(params=PARAMS)})
    cli = Cli(cfg)
    part = weather_df.head(100).reset_index(drop=True)
    again = part.iloc[[5]].assign(rain=1 - part.loc[5, "rain"])  # the same day, another label
    path = tmp_path / "repeated.csv"
    pd.concat([part, again]).to_csv(path, index=False)
    assert cli.json("ingest", MODEL, path) | {"first_rejects": []} == {
        "inserted": 100, "duplicates": 1, "rejected": 0, "first_rejects": []
    }  # fmt: skip
    first = stored(cfg).set_index("entity_id").loc[part.loc[5, "day_id"], "target"]
    assert first == part.loc[5, "rain"]
    assert "0 inserted, 101 duplicates, 0 rejected" in text(cli("ingest", MODEL, path))
