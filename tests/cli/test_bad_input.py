"""Bad input through the real CLI ends in exit 2 and a message naming the file, setting or
flag, never in a traceback (clihelp.invoke re-raises any exception the command let out);
and `demo --dir` never deletes a folder it did not make."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from clihelp import MODEL, Cli, invoke, text, write_config

from weather_spec import weather_model

PARAMS = {"n_estimators": 20, "num_threads": 1}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def make_cli(tmp_path: Path, **overrides: Any) -> Cli:
    return Cli(write_config(tmp_path / "retrainer.yaml", {MODEL: weather_model(**overrides)}))


# ---- the spec file -----------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8_is_exit_2_naming_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes("models:\n  weather: {task: classification}  # é\n".encode("latin-1"))
    msg = text(invoke(["-c", cfg, "status"], 2))
    assert "latin1.yaml: is not UTF-8 text (byte 0xe9" in msg and "Save the spec as UTF-8" in msg


def test_a_config_path_that_is_a_folder_is_exit_2(tmp_path: Path) -> None:
    msg = text(invoke(["-c", tmp_path, "status"], 2))
    assert f"Config path '{tmp_path}' is a folder, not a file" in msg


def test_bad_yaml_in_an_environment_override_is_exit_2_naming_the_variable(
    tmp_path: Path,
) -> None:
    cli = make_cli(tmp_path).with_env(RETRAINER_WEATHER__FAMILY="[lightgbm")
    msg = text(cli("status", code=2))
    assert "Environment variable RETRAINER_WEATHER__FAMILY: '[lightgbm' is not a valid YAML" in msg


POLICY_AGE = "policy.max_days_since_full_retrain"


@pytest.mark.parametrize(
    ("overrides", "where", "limit"),
    [
        ({"training": {"window_days": 900_000}}, "training.window_days", "36500"),
        ({"monitor": {"window": "900000d"}}, "monitor.window", "at most 36500d"),
        ({"policy": {"max_days_since_full_retrain": 1e300}}, POLICY_AGE, "36500"),
        ({"retention": {"keep": 10**20}}, "retention.keep", "too large: at most 9,007,199,254"),
    ],
)
def test_huge_numbers_in_the_spec_are_exit_2_naming_the_setting(
    tmp_path: Path, overrides: dict[str, Any], where: str, limit: str
) -> None:
    msg = text(make_cli(tmp_path, **overrides)("status", code=2))
    assert f"models.{MODEL}.{where}" in msg and limit in msg


# ---- flags -------------------------------------------------------------------------------


def test_huge_numbers_in_flags_are_exit_2_naming_the_flag(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    cli = make_cli(tmp_path, params=PARAMS)
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    msg = text(cli("train", MODEL, "--days", 10**9, code=2))
    assert "'--days'" in msg and "36500" in msg
    msg = text(cli("fine-tune", MODEL, "--days", 900_000, code=2))
    assert "'--days'" in msg and "36500" in msg
    msg = text(cli("monitor", MODEL, "--window", "900000d", code=2))
    assert "'900000d' is too long: at most 36500d" in msg
    msg = text(cli("decisions", MODEL, "--limit", 10**20, code=2))
    assert "'--limit'" in msg
    cli("decisions", MODEL, "--limit", 5)


# ---- demo --dir --------------------------------------------------------------------------


def test_demo_refuses_a_folder_it_did_not_make_and_deletes_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("years of work")
    msg = text(invoke(["demo", "--dir", work, "--years", 0.1], 2))
    assert f"--dir {work}: the folder is not empty and was not made by the demo" in msg
    assert (work / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in work.iterdir()) == ["thesis.tex"]
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert "is a file, not a folder" in text(invoke(["demo", "--dir", a_file], 2))
    assert a_file.read_text() == "x"


def test_demo_reuses_its_own_folder(tmp_path: Path) -> None:
    from retrainer.apps.demo import MARKER, fresh_folder

    mine = tmp_path / "demo-workspace"
    fresh_folder(mine)
    (mine / "retrainer.db").write_text("an old demo store")
    spec = yaml.safe_dump({"models": {}})
    (mine / "retrainer.yaml").write_text(spec)
    fresh_folder(mine)  # a re-run starts clean
    assert sorted(p.name for p in mine.iterdir()) == [MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    fresh_folder(empty)  # an empty folder the user made is fine too
    assert (empty / MARKER).is_file()
