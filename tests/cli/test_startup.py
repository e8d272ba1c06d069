"""Start-up stays light: a fresh interpreter running ``retrainer --help`` or ``retrainer status``
imports no scikit-learn, scipy, pandas, pyarrow or model library. The CLI imports the library
inside each command, core's metric definitions compute with scikit-learn only when asked, and
a workspace loads model families and alerting on first use.

Each case runs in a subprocess (this test process has imported everything already) and asserts
what was imported, never how long it took."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrainer.cli.main import app

HEAVY = ("sklearn", "scipy", "pandas", "pyarrow", "river", "lightgbm", "xgboost", "catboost")

# argv: -c RESULT_FILE CLI_ARGS... ; writes the exit code and the heavy modules imported
_PROBE = f"""
import json, sys
from retrainer.cli.main import app
try:
    app(sys.argv[2:], prog_name="retrainer")
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = {HEAVY!r}
loaded = sorted(h for h in heavy if h in sys.modules)
with open(sys.argv[1], "w") as f:
    json.dump({{"code": code, "loaded": loaded}}, f)
"""


def _env() -> dict[str, str]:
    """The caller's environment without RETRAINER_* settings, with a wide console."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env["COLUMNS"] = "2000"
    return env


def run_fresh(tmp_path: Path, *args: str) -> tuple[int, list[str], str]:
    """Run the CLI with ``args`` in a new interpreter: (exit code, heavy modules, stdout)."""
    result = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(result), *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.exists(), f"the probe did not finish:\n{proc.stdout}\n{proc.stderr}"
    probe = json.loads(result.read_text())
    return probe["code"], probe["loaded"], proc.stdout


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    code, loaded, stdout = run_fresh(tmp_path, "--help")
    assert code == 0
    assert "status" in stdout and "train" in stdout  # the commands are all registered
    assert loaded == [], f"`retrainer --help` imported {', '.join(loaded)}"


def test_core_spec_and_metric_definitions_import_no_scientific_stack(tmp_path: Path) -> None:
    code = (
        "import sys, retrainer.core.spec, retrainer.core.metrics; "
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert proc.stdout.strip() == "[]", f"importing retrainer.core.spec imported {proc.stdout}"


@pytest.fixture
def deployed(config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]) -> Path:
    """A small SQLite workspace with 1.0.0 trained and deployed; the spec's path."""
    config = config_file(params={"n_estimators": 20, "num_threads": 1})
    runner = CliRunner()
    for args in (
        ["ingest", "weather", str(weather_csv("1949-01-01", "1951-01-01"))],
        ["train", "weather", "--deploy"],
    ):
        res = runner.invoke(app, ["-c", str(config), *args])
        assert res.exit_code == 0, res.output
    return config


def test_status_imports_no_heavy_library(tmp_path: Path, deployed: Path) -> None:
    code, loaded, stdout = run_fresh(tmp_path, "-c", str(deployed), "status", "weather")
    assert code == 0
    assert "champion 1.0.0" in stdout
    assert loaded == [], f"`retrainer status` imported {', '.join(loaded)}"
