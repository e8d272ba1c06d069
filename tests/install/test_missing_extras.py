"""What the core install does when a feature needs an extra that is not installed.

A library is made missing by a ``None`` in ``sys.modules`` (its import raises ImportError),
for the library and for the retrainer module that wraps it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pandas as pd
import pytest

from retrainer.core.errors import ConfigError, FamilyUnavailableError
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import plan, train
from retrainer.plumbing.workspace import Workspace
from retrainer.store.artifacts import ArtifactStore
from retrainer.store.engine import make_engine


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["date"] >= "1949-01-01") & (df["date"] < "1951-01-01")]


def test_missing_family_library_falls_back_and_says_why(
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, "lightgbm", "retrainer.families.lightgbm_family")
    ws = make_workspace(params={"n_estimators": 20})  # family lightgbm, fallback randomforest
    ingest_frame(ws, "weather", _rows(weather_df))
    assert plan(ws, "weather").fallback_family == "randomforest"
    result = train(ws, "weather", deploy=True)
    v = result.version
    assert (v.family, result.deployed) == ("randomforest", True)
    assert v.details["fallback"]["requested"] == "lightgbm"
    assert "pip install 'retrainer[lightgbm]'" in v.details["fallback"]["reason"]


def test_missing_family_library_without_fallback_names_the_extra(
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, "xgboost", "retrainer.families.xgboost_family")
    ws = make_workspace(family="xgboost", fallback_family=None)
    ingest_frame(ws, "weather", _rows(weather_df))
    with pytest.raises(FamilyUnavailableError, match=r"pip install 'retrainer\[xgboost\]'"):
        plan(ws, "weather")


def test_postgres_store_without_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "psycopg")
    with pytest.raises(ConfigError, match=r"'psycopg'.*pip install 'retrainer\[postgres\]'"):
        make_engine("postgresql+psycopg://app:s3cret@db.example/prod")
    with pytest.raises(ConfigError) as err:
        make_engine("postgresql://app:s3cret@db.example/prod")
    assert "s3cret" not in err.value.message


def test_s3_artifacts_without_s3fs_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "s3fs")
    with pytest.raises(ConfigError, match=r"s3://bucket/models.*pip install 'retrainer\[s3\]'"):
        ArtifactStore("s3://bucket/models")
