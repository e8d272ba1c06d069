"""maintain for a whole fleet on Dask workers (lifecycle.fleet_maintain): the same decisions
and versions as one member after another in this process; one member failing while the others
go on (on SQLite, shared by file between two worker processes that wait for each other's write
lock, and on PostgreSQL by URL); the CLI end to end (`maintain --all --workers 2 --json`); an
unreachable scheduler; a fleet's scheduled maintain.

One LocalCluster of 2 worker processes serves the module (starting one costs seconds on a
busy machine): the fleet's ``training: {engine: dask, scheduler: ...}`` places the members on
it. The members are tiny (4 stores, 120 daily rows each, 10 trees, no window choice)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.errors import LeaseHeld
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.fleet_maintain import Maintained, maintain_many, plan, run_batch
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.plumbing.lease import held_lease, model_lease
from retrainer.plumbing.workspace import Workspace

from .fleet_data import FLEET, fleet_rows, fleet_spec

distributed = pytest.importorskip("distributed")

STORES = ["s0", "s1", "s2", "s3"]
TINY: dict[str, Any] = {
    "params": {"n_estimators": 10, "num_leaves": 4, "num_threads": 1},
    "training": {"choice": {"enabled": False}},
}


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def _spec(tmp: Path, name: str, store: str | None = None, **training: Any) -> dict[str, Any]:
    return fleet_spec(
        store or f"sqlite:///{tmp / f'{name}.db'}",
        str(tmp / f"{name}-art"),
        **{**TINY, "training": {**TINY["training"], **training}},
    )


def _workspace(data: dict[str, Any]) -> Workspace:
    ws = Workspace(parse_spec(data, environ={}))
    ingest_frame(ws, FLEET, fleet_rows(STORES, 120))
    return ws


def _view(m: Maintained) -> tuple[Any, ...]:
    assert m.error is None and m.result is not None, m.error
    d = m.result.decision
    return (m.model, d.action, m.result.version, m.result.deployed, m.result.failed)


def test_workers_decide_and_register_as_the_serial_path(scheduler: str, tmp_path: Path) -> None:
    with _workspace(_spec(tmp_path, "serial")) as serial:
        names = serial.model_names()
        assert plan(serial.spec, names)[0].where == "this process"
        one_by_one = [_view(m) for m in maintain_many(serial, names)]
        serial_versions = {n: serial.store.list_versions(n)[0].n_rows for n in names}
    data = _spec(tmp_path, "parallel", engine="dask", scheduler=scheduler)
    with _workspace(data) as ws:
        assert [p.where for p in plan(ws.spec, names)] == [scheduler]
        seen: list[str] = []
        parallel = maintain_many(ws, names, on_done=lambda m: seen.append(m.model))
        assert sorted(seen) == names  # each outcome reported once, as it came
        assert [_view(m) for m in parallel] == one_by_one
        assert [v[1:4] for v in one_by_one] == [("full_retrain", "1.0.0", True)] * len(STORES)
        for name in names:  # registered in the shared SQLite file by the workers
            assert ws.store.roles(name).champion == "1.0.0"
            assert ws.store.list_versions(name)[0].n_rows == serial_versions[name]
        # a second turn: champions now, nothing to do, on the same worker workspaces
        again = maintain_many(ws, names, batch=3)
        assert {_view(m)[1] for m in again} == {"nothing"}


def test_a_failing_member_is_reported_and_the_others_maintained(
    scheduler: str, store_url: str, tmp_path: Path
) -> None:
    """On SQLite and PostgreSQL: each worker process opens the store by its URL."""
    data = _spec(tmp_path, "fail", store_url, engine="dask", scheduler=scheduler)
    with _workspace(data) as ws:
        names = ws.model_names()
        with held_lease(ws, model_lease("sales.s1"), owner="someone else"):
            out = maintain_many(ws, names)
        by = {m.model: m for m in out}
        assert isinstance(by["sales.s1"].error, LeaseHeld), by["sales.s1"]
        assert "sales.s1" in by["sales.s1"].error.message
        assert ws.store.roles("sales.s1").champion is None
        for name in ("sales.s0", "sales.s2", "sales.s3"):
            assert _view(by[name])[1:3] == ("full_retrain", "1.0.0")


def test_worker_workspace_is_opened_once_per_process(tmp_path: Path) -> None:
    data = _spec(tmp_path, "batch")
    with _workspace(data) as ws:
        first = run_batch(ws.spec, ["sales.s0"], _options())
        second = run_batch(ws.spec, ["sales.s1", "sales.missing"], _options())
    assert [m.model for m in first + second] == ["sales.s0", "sales.s1", "sales.missing"]
    assert second[1].result is not None and second[1].result.version is None  # no rows
    from retrainer.lifecycle import fleet_maintain

    assert len(fleet_maintain._WORKSPACES) == 1


def _options() -> Any:
    from retrainer.lifecycle.fleet_maintain import Options

    return Options(dry_run=True)


def _write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    config = tmp_path / "retrainer.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def test_cli_maintain_all_with_two_workers(tmp_path: Path) -> None:
    data = _spec(tmp_path, "cli")
    with _workspace(data):
        pass
    config = _write_config(tmp_path, data)
    r = CliRunner().invoke(app, ["--config", str(config), "maintain", "--all", "--workers", "2",
                                 "--json", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    views = json.loads(r.stdout)
    assert [(v["model"], v["action"], v["version"], v["deployed"]) for v in views] == [
        (f"sales.{s}", "full_retrain", "1.0.0", True) for s in STORES
    ]
    bad = CliRunner().invoke(app, ["--config", str(config), "maintain", "sales.s0", "--workers",
                                   "2"])  # fmt: skip
    assert bad.exit_code == 2 and "--workers" in bad.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_scheduler_exits_1_naming_it_and_registers_nothing(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    data = _spec(tmp_path, "down", engine="dask", scheduler=address)
    with _workspace(data):
        pass
    config = _write_config(tmp_path, data)
    r = CliRunner().invoke(app, ["--config", str(config), "maintain", "--all", "--quiet"])
    assert r.exit_code == 1, r.output
    assert address in r.output
    with Workspace(parse_spec(data, environ={})) as ws:
        assert all(not ws.store.list_versions(m) for m in ws.model_names())


def test_scheduled_maintain_of_a_fleet_runs_every_member_as_one_run(tmp_path: Path) -> None:
    from retrainer.scheduler.jobs import run_job

    with _workspace(_spec(tmp_path, "sched")) as ws:
        with held_lease(ws, model_lease("sales.s2"), owner="a manual maintain"):
            r = run_job(ws, "maintain", FLEET, None, owner="test", alert=lambda a: None)
        assert (r.model, r.outcome) == (FLEET, "ok"), r.detail
        assert r.detail.startswith("4 members: 3 ok (3 full_retrain), 1 skipped; skipped: ")
        assert "sales.s2 (model lease held" in r.detail
        assert [(j.model, j.outcome) for j in ws.store.job_runs("maintain", limit=5)] == [
            (FLEET, "ok")
        ]
        decision = ws.store.decisions("sales.s0", 1)[0]
        assert decision.action == "full_retrain"
        assert ws.store.roles("sales.s0").champion == "1.0.0"
        assert ws.store.roles("sales.s2").champion is None
