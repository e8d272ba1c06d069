"""The CLI's --json and the API's to_dict() are one shape: the CLI renders the API's results."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

import retrainer
from retrainer.cli.main import app

from .apihelp import MODEL


def cli_json(workspace: Path, *args: str) -> object:
    res = CliRunner().invoke(app, ["-c", str(workspace / "retrainer.yaml"), *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_versions_drift_and_maintain_print_what_the_api_returns(
    workspace_dir: Path, days: pd.DataFrame
) -> None:
    with retrainer.open(workspace_dir) as rt:
        rt.ingest(MODEL, days.iloc[:900])
        rt.train(MODEL, deploy=True)
        rt.predict(MODEL, days.iloc[900:960])
        versions = rt.versions(MODEL, detail=True).to_dict()["versions"]
        drift = rt.drift(MODEL).to_dict()["features"]
    assert cli_json(workspace_dir, "versions", MODEL, "--detail") == versions
    assert cli_json(workspace_dir, "drift", MODEL) == drift
    with retrainer.open(workspace_dir) as rt:
        planned = rt.maintain(MODEL, dry_run=True).to_dict()
    printed = cli_json(workspace_dir, "maintain", MODEL, "--dry-run")
    assert isinstance(printed, dict) and printed.keys() == planned.keys()
    assert (printed["action"], printed["dry_run"]) == (planned["action"], True)
