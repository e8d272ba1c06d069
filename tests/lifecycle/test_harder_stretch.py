"""A stretch that is harder for every predictor is not a degradation of the model.

A regression stream whose relation never changes (the target is the feature plus noise) gets
three times noisier after its first two years: the model's live MAE triples, and so does the
previous actual's. Judged against its holdout MAE alone, the champion is critically degraded
at every check; judged against that baseline scaled by how much harder the live rows are for
the previous actual (``policy.scale_baseline_by_naive``, the default), it is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainer.apps.replay import ReplayConfig, replay
from retrainer.core.spec import parse_spec
from retrainer.plumbing.workspace import Workspace

CALM, SCORED = 730, 168


def _stream() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = CALM + SCORED
    level = np.cumsum(rng.normal(0, 0.05, n))  # a slow random walk the feature observes
    noise = np.where(np.arange(n) < CALM, 0.5, 1.5) * rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "day_id": [f"d{i:04d}" for i in range(n)],
            "date": pd.date_range("2020-01-01", periods=n, freq="D"),
            "x": level,
            "y": level + noise,
        }
    )


def _decisions(tmp: Path, **policy: Any) -> tuple[list[Any], list[Any]]:
    spec = {
        "task": "regression",
        "family": "lightgbm",
        "params": {"num_threads": 1, "n_estimators": 60},
        "target": "y",
        "id_column": "day_id",
        "time_column": "date",
        "features": {"numeric": ["x"]},
        "policy": policy,
    }
    raw = {"store": f"sqlite:///{tmp / 'r.db'}", "artifacts": str(tmp / "a"), "models": {"m": spec}}
    with Workspace(parse_spec(raw, environ={})) as ws:
        replay(ws, "m", _stream(), ReplayConfig(initial_days=CALM, maintain_every_days=28))
        decisions = ws.store.decisions("m", limit=100)
        versions = ws.store.list_versions("m")
    return decisions, versions


def _critical(decisions: list[Any]) -> list[Any]:
    return [d for d in decisions if "critical_degradation" in d.numbers.get("fired", [])]


def test_a_harder_stretch_scales_the_baseline_instead_of_retraining(tmp_path: Path) -> None:
    decisions, versions = _decisions(tmp_path)
    first = min(versions, key=lambda v: v.created_at)
    naive = first.details["naive_holdout"]
    assert naive["metric"] == "mae" and naive["rows"] == first.details["holdout_rows"]
    assert 0.5 < naive["value"] < 1.0  # |e_t - e_t-1| of noise sd 0.5: about 0.56
    assert not _critical(decisions), [d.reasons for d in _critical(decisions)]
    scales = [d.numbers["baseline_scale"] for d in decisions if d.numbers.get("baseline_scale")]
    assert scales and max(scales) > 2  # the previous actual errs about 3x more live


def test_without_the_scaling_the_same_stretch_reads_as_a_critical_degradation(
    tmp_path: Path,
) -> None:
    decisions, versions = _decisions(tmp_path / "off", scale_baseline_by_naive=False)
    assert _critical(decisions)
    assert all("naive_holdout" not in v.details for v in versions)
    assert all(d.numbers.get("baseline_scale") is None for d in decisions)
