"""Helpers shared by the CLI test modules: run the real app, check the exit code exactly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner, Result

from retrainer.cli.main import app

MODEL = "weather"
runner = CliRunner()


def invoke(args: list[Any], code: int, env: dict[str, str] | None = None) -> Result:
    res = runner.invoke(app, [str(a) for a in args], env=env)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback is never an acceptable way to fail
    assert res.exit_code == code, f"exit {res.exit_code}, expected {code}:\n{res.output}"
    return res


def text(res: Result) -> str:
    """Everything printed (stdout and stderr), whitespace collapsed."""
    return " ".join(res.output.split())


@dataclass
class Cli:
    config: Path
    env: dict[str, str] | None = None

    def __call__(self, *args: Any, code: int = 0) -> Result:
        return invoke(["-c", self.config, *args], code, self.env)

    def json(self, *args: Any, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def with_env(self, **env: str) -> Cli:
        return Cli(self.config, {**(self.env or {}), **env})


def write_config(path: Path, models: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {"store": "sqlite:///retrainer.db", "artifacts": "artifacts", "models": models},
            sort_keys=False,
        )
    )
    return path
