"""Progress of long commands through the real CLI: a line per stage on stderr when it is not a
terminal, stdout (and --json) unchanged, nothing with --quiet; a Rich bar on a terminal."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from clihelp import MODEL, Cli, write_config
from rich.console import Console

from retrainer.cli.progress_view import shown
from weather_spec import weather_model

PARAMS = {"n_estimators": 20, "num_threads": 1}
SECONDS = r"\d+\.\d s$"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def stage_lines(stderr: str, label: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{label}: ")]


def has(lines: list[str], pattern: str) -> bool:
    return any(re.fullmatch(pattern + " " + SECONDS, line) for line in lines)


def test_long_commands_print_a_line_per_stage_on_stderr_and_json_stays_on_stdout(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    # compare measures randomforest with its own small section (its default is 200 trees)
    params = {"lightgbm": PARAMS, "randomforest": {"n_estimators": 10, "n_jobs": 1}}
    body = weather_model(params=params, validation={"scheme": "walk_forward", "folds": 3})
    cli = Cli(write_config(tmp_path / "retrainer.yaml", {MODEL: body}))

    res = cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"), "--json")
    assert set(json.loads(res.stdout)) == {"inserted", "duplicates", "rejected", "first_rejects"}
    lines = stage_lines(res.stderr, f"ingest {MODEL}")
    assert has(lines, rf"ingest {MODEL}: read 730 rows"), res.stderr
    assert has(lines, rf"ingest {MODEL}: publish"), res.stderr

    res = cli("train", MODEL, "--deploy", "--json")
    assert json.loads(res.stdout)["version"] == "1.0.0"
    lines = stage_lines(res.stderr, f"train {MODEL}")
    for pattern in (
        r"load rows 730 rows",
        r"window choice 6 candidates",  # 3 windows, a half-life, 2 inputs made from time
        r"fit lightgbm",
        r"walk-forward folds 3 folds",
        r"refit lightgbm",
        r"gate and register",
    ):
        assert has(lines, rf"train {MODEL}: {pattern}"), f"{pattern!r} not in:\n{res.stderr}"

    res = cli("maintain", MODEL, "--dry-run", "--json")
    assert json.loads(res.stdout)["dry_run"] is True
    lines = stage_lines(res.stderr, f"maintain {MODEL}")
    assert has(lines, rf"maintain {MODEL}: monitor and drift"), res.stderr

    res = cli("backup", tmp_path / "b.tar.gz")  # people's output on stdout, stages on stderr
    assert res.stdout.startswith("backup ") and "tables" not in res.stdout
    lines = stage_lines(res.stderr, "backup")
    assert has(lines, r"backup: tables \d+ tables") and has(lines, r"backup: artifacts 1 artifacts")

    res = cli("compare", MODEL, "--families", "randomforest", "--folds", "2", "--json")
    assert [r["family"] for r in json.loads(res.stdout)["rows"]] == ["randomforest"]
    lines = stage_lines(res.stderr, f"compare {MODEL}")
    assert has(lines, rf"compare {MODEL}: measure randomforest 2 folds"), res.stderr


def test_quiet_prints_no_stage_lines(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    cli = Cli(write_config(tmp_path / "retrainer.yaml", {MODEL: weather_model(params=PARAMS)}))
    res = cli("ingest", MODEL, weather_csv("1949-01-01", "1950-06-01"), "--quiet")
    assert res.stderr == "" and res.stdout.startswith(f"{MODEL}: ")
    res = cli("train", MODEL, "-q", "--json")
    assert res.stderr == ""
    assert json.loads(res.stdout)["version"] == "1.0.0"


def test_a_terminal_gets_a_bar_with_the_count() -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120, color_system=None)
    with shown(f"train {MODEL}", console=terminal) as progress:
        progress.stage("window choice", total=4, unit="candidates")
        for _ in range(4):
            progress.advance()
        progress.stage("load rows", unit="rows")
        progress.advance(262_144)
    drawn = screen.getvalue()
    assert f"train {MODEL}: window choice" in drawn and "4/4 candidates" in drawn
    assert "━" in drawn  # the bar
    assert "262,144 rows" in drawn
    assert not re.search(SECONDS, drawn, re.MULTILINE)  # a bar, not log lines
