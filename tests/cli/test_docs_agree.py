"""Values the docs list are the values the code gives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from retrainer.monitoring.drift import Status

CLI_MD = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def test_drift_status_values_in_the_docs_are_the_codes() -> None:
    section = CLI_MD[CLI_MD.index("## `retrainer drift`") :]
    line = re.search(r"`status` is ([^\n]*)", section)
    assert line is not None
    documented = set(re.findall(r"`([a-z_]+)`", line.group(1)))
    assert documented == set(get_args(Status))
