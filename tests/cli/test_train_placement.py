"""`train --deploy` under a rollout says where the new version went: started as a challenger,
in the text and as the JSON role (REST train's job result uses the same role function)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from clihelp import MODEL, Cli, text, write_config

from weather_spec import weather_model

PARAMS = {"n_estimators": 20, "num_threads": 1}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # messages never wrap
    monkeypatch.chdir(tmp_path)


def test_a_candidate_under_ab_is_said_to_start_as_a_challenger(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    body = weather_model(
        params=PARAMS,
        rollout={"mode": "ab", "fraction": 0.1},
        gate={"min_rows": 100_000},  # "insufficient": allowed, so placed by the rollout
    )
    cli = Cli(write_config(tmp_path / "retrainer.yaml", {MODEL: body}))
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    first = cli.json("train", MODEL, "--deploy")
    assert first["role"] == "champion"
    cli("ingest", MODEL, weather_csv("1951-01-01", "1952-01-01"))
    said = text(cli("train", MODEL, "--deploy"))
    assert "1.1.0" in said and "— started as ab challenger at 10%" in said, said
    assert cli.json("status", MODEL)["challenger"]["version"] == "1.1.0"
    cli("rollout", "stop", MODEL)
    again = cli.json("train", MODEL, "--deploy")
    assert again["role"] == "challenger" and not again["deployed"]
