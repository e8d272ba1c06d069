"""Races between role changes and retention, and deploys on a stale gate (SQLite and
PostgreSQL): a role never points at a deleted version, a deploy of one is a clear
ConflictError, and a version gated against a champion that was replaced meanwhile is
registered but not deployed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from retrainer.core.errors import ConflictError
from retrainer.core.spec import load_spec
from retrainer.lifecycle import deploy as deploy_ops
from retrainer.lifecycle import rollout
from retrainer.lifecycle.deploy import apply_retention, deploy
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_frame, resolve_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from waits import SUBPROCESS
from weather_spec import weather_model

FAST = {"params": {"n_estimators": 5}}


def _years(df: pd.DataFrame, end: str) -> pd.DataFrame:
    return df[(df["date"] >= "1949-01-01") & (df["date"] < end)]


def _versions_with_own_artifacts(ws: Workspace, df: pd.DataFrame, years: range) -> None:
    """One version per year of rows (new rows: distinct artifacts), the first deployed."""
    for i, year in enumerate(years):
        ingest_frame(ws, "weather", _years(df, f"{year}-01-01"))
        train(ws, "weather", deploy=i == 0, force=True)


def test_deploy_of_a_version_retention_deletes_meanwhile_is_a_conflict(
    store_url: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retention between deploy's artifact check and its role change (the race, made
    deterministic): the role change refuses the deleted version under the model's lock."""
    ws = make_workspace(store_url, retention={"keep": 5}, **FAST)
    _versions_with_own_artifacts(ws, weather_df, range(1951, 1954))  # 1.0.0 champion .. 1.2.0
    strict = make_workspace(store_url, retention={"keep": 1}, **FAST)  # another process's spec
    checked = deploy_ops.verify_loadable

    def check_then_retention(w: Workspace, v: object) -> None:
        checked(w, v)  # type: ignore[arg-type]
        assert apply_retention(strict, "weather") == ["1.1.0"]  # keeps 1.2.0 and the champion

    monkeypatch.setattr(deploy_ops, "verify_loadable", check_then_retention)
    with pytest.raises(ConflictError, match=r"version 1\.1\.0 was deleted by retention"):
        deploy(ws, "weather", "1.1.0")
    assert ws.store.roles("weather").champion == "1.0.0"
    monkeypatch.undo()
    with pytest.raises(ConflictError, match="deleted by retention"):
        ws.store.set_challenger("weather", "1.1.0", "shadow", 0.0, "test", "test")


RACER = """
import json, random, sys
from retrainer.core.errors import RetrainerError
from retrainer.core.spec import load_spec
from retrainer.lifecycle.deploy import apply_retention, deploy
from retrainer.plumbing.workspace import Workspace

role, config, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(role)
with Workspace(load_spec(config, environ={})) as ws:
    versions = [v.version for v in ws.store.list_versions("weather")]  # stale on purpose
    for _ in range(rounds):
        if role == "retention":
            print(json.dumps({"deleted": apply_retention(ws, "weather")}), flush=True)
            continue
        v = rng.choice(versions)
        try:
            deploy(ws, "weather", v, forced=True, reason="race")
            print(json.dumps({"deployed": v}), flush=True)
        except RetrainerError as exc:
            print(json.dumps({"refused": v, "code": exc.code, "message": exc.message}), flush=True)
"""


def test_deploy_racing_retention_in_two_processes(
    store_url: str, tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    """A deployer picks from a stale list of versions while retention (keep 1) runs in
    another process, for a bounded number of rounds: no deploy follows the deletion of its
    version, the champion is live and predicts, and each refusal is a ConflictError."""
    artifacts = tmp_path / "artifacts"

    def config(name: str, keep: int) -> Path:
        body = {
            "store": store_url,
            "artifacts": str(artifacts),
            "models": {"weather": weather_model(retention={"keep": keep}, **FAST)},
        }
        path = tmp_path / name
        path.write_text(yaml.safe_dump(body))
        return path

    deployer, retainer = config("deployer.yaml", 100), config("retention.yaml", 1)
    with Workspace(load_spec(deployer, environ={})) as ws:
        _versions_with_own_artifacts(ws, weather_df, range(1951, 1957))  # six versions
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = {
        role: subprocess.Popen(
            [sys.executable, "-c", RACER, role, str(cfg), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for role, cfg, rounds in (("deploy", deployer, 40), ("retention", retainer, 40))
    }
    outputs = {role: p.communicate(timeout=SUBPROCESS) for role, p in procs.items()}
    for role, (_out, err) in outputs.items():
        assert procs[role].returncode == 0, f"{role} racer failed: {err[-2000:]}"
    lines = [json.loads(line) for line in outputs["deploy"][0].splitlines()]
    refused = [r for r in lines if "refused" in r]
    assert all(r["code"] == "conflict" for r in refused), refused
    with Workspace(load_spec(deployer, environ={})) as ws:
        status = {v.version: v.status for v in ws.store.list_versions("weather")}
        champion = ws.store.roles("weather").champion
        assert champion is not None and status[champion] != "deleted"
        deleted_at: dict[str, int] = {}
        for e in ws.store.events("weather"):
            if e.action == "delete" and e.from_version:
                deleted_at[e.from_version] = e.id
            elif e.action == "deploy":
                assert e.to_version not in deleted_at, f"deployed {e.to_version} once deleted"
        assert len(predict_frame(resolve_predictor(ws, "weather"), weather_df.head(3))) == 3


def test_train_deploy_on_a_replaced_champion_registers_without_deploying(
    store_url: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another deploy between a training's gate and its registration (made deterministic):
    the version is registered without a role and the error says how to gate it again."""
    ws = make_workspace(store_url, **FAST)
    _versions_with_own_artifacts(ws, weather_df, range(1951, 1953))  # 1.0.0 champion, 1.1.0
    ingest_frame(ws, "weather", _years(weather_df, "1954-01-01"))
    placed = rollout.place

    def deploy_meanwhile(*args: object, **kwargs: object) -> rollout.Placement:
        ws.store.move_champion("weather", "1.1.0", "deploy", "elsewhere", "test")
        return placed(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollout, "place", deploy_meanwhile)
    with pytest.raises(ConflictError, match=r"1\.2\.0 is registered but not deployed") as err:
        train(ws, "weather", deploy=True)
    assert "gated against champion 1.0.0" in err.value.message
    assert "retrainer rollout start weather 1.2.0" in err.value.message
    assert ws.store.roles("weather").champion == "1.1.0"
    v = ws.store.get_version("weather", "1.2.0")
    assert v.details["deployed"] is False
    assert v.details["stale_gate"] == {"gated_against": "1.0.0", "champion": "1.1.0"}


def test_three_concurrent_train_deploys_each_deploy_on_a_gate_against_the_champion_replaced(
    store_url: str, config_file: Callable[..., Path], tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    """Three `retrainer train --deploy` at once: every deploy replaces the very champion its
    gate judged against; a training that lost the race exits 1 naming its version, which
    stays registered without a role."""
    cfg = config_file(store_url, **FAST)
    with Workspace(load_spec(cfg, environ={})) as ws:
        _versions_with_own_artifacts(ws, weather_df, range(1951, 1952))  # 1.0.0 champion
        ingest_frame(ws, "weather", _years(weather_df, "1954-01-01"))
    env = {**os.environ, "RETRAINER_CONFIG": str(cfg)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "retrainer.cli.main", "train", "weather", "--deploy"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.communicate(timeout=SUBPROCESS)[0], p.returncode) for p in procs]
    with Workspace(load_spec(cfg, environ={})) as ws:
        versions = {v.version: v for v in ws.store.list_versions("weather")}
        assert len(versions) == 4, results
        for e in ws.store.events("weather"):
            if e.action == "deploy" and e.to_version != "1.0.0":
                gated = versions[e.to_version].details["gate"]["champion_version"]
                assert gated == e.from_version, f"{e.to_version} gated on {gated}"
        stale = {k for k, v in versions.items() if "stale_gate" in v.details}
    for out, code in results:
        assert code in (0, 1), out
        if code == 1:
            assert "is registered but not deployed" in out, out
    assert sum(code == 1 for _, code in results) == len(stale)
