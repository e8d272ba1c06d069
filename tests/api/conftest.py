"""A weather workspace for the Python API, as a spec dict, a YAML file and a folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

import retrainer
from retrainer.datasets import weather

from .apihelp import spec_dict


@pytest.fixture(scope="session")
def days() -> pd.DataFrame:
    """The first 1,400 days of the bundled weather data (1949-1952)."""
    return weather().iloc[:1400].reset_index(drop=True)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[retrainer.Retrainer]:
    with retrainer.open(spec_dict(tmp_path)) as opened:
        yield opened


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    """A folder with a retrainer.yaml whose store and artifacts are relative to it."""
    folder = tmp_path / "ws"
    folder.mkdir()
    spec = spec_dict(folder)
    spec.update(store="sqlite:///retrainer.db", artifacts="artifacts")
    (folder / "retrainer.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder
