"""Ingest into a fleet: rows split by the ``by`` column into one member each, all or none;
members appear in status (three queries whatever their number); a member trains and
maintains like any model. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.core.errors import InputError
from retrainer.core.fleet import member_name
from retrainer.core.progress import current
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.fleet_ingest import ingest_fleet
from retrainer.lifecycle.ingest import ingest_file, ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.store.rows import ROWS

from .fleet_data import FLEET, fleet_rows, fleet_spec, write_csv

STORES = ["s0", "s1", "SKU 12/4"]


@pytest.fixture
def ws(store_url: str, tmp_path: Path) -> Workspace:
    spec = parse_spec(fleet_spec(store_url, str(tmp_path / "art")), environ={})
    with Workspace(spec) as w:
        yield w


def test_ingest_splits_rows_by_member_in_one_run(ws: Workspace, tmp_path: Path) -> None:
    df = fleet_rows(STORES, 60)
    r = ingest_file(ws, FLEET, write_csv(df, tmp_path / "rows.csv"), chunk_rows=50)
    assert (r.inserted, r.duplicates, r.rejected) == (180, 0, 0)
    members = ws.members(FLEET)
    hashed = member_name(FLEET, "SKU 12/4")
    assert members == sorted(["sales.s0", "sales.s1", hashed])
    assert hashed.startswith("sales.SKU-12-4--")
    for m in members:
        frame = ws.store.training_frame(m)
        assert len(frame) == 60
        assert "store" not in frame.columns and "__member__" not in frame.columns
    # the same file again: every row a duplicate, nothing staged left behind
    again = ingest_file(ws, FLEET, write_csv(df, tmp_path / "rows.csv"), chunk_rows=50)
    assert (again.inserted, again.duplicates) == (0, 180)
    assert ws.store.staged_member_runs("sales.") == []
    view = {o.roles.model: o for o in ws.store.overview(ws.model_names())}
    assert [view[m].training_rows for m in members] == [60, 60, 60]


def test_a_bad_file_stores_nothing_for_any_member(ws: Workspace, tmp_path: Path) -> None:
    df = fleet_rows(STORES, 40).drop(columns=["store"])
    with pytest.raises(InputError, match=r"column 'store' \(fleet.by of model 'sales'"):
        ingest_file(ws, FLEET, write_csv(df, tmp_path / "rows.csv"))
    assert ws.members(FLEET) == []
    # a failure in a later chunk: the members the first chunk staged get no rows either
    good = fleet_rows(STORES, 40)
    second = good.iloc[100:].drop(columns=["z"])
    with pytest.raises(InputError, match=r"\['z'\]"):
        ingest_fleet(ws, ws.model_spec(FLEET), iter([good.iloc[:100], second]), "t", "file",
                     current())  # fmt: skip
    assert all(ws.store.training_stats(m)[0] == 0 for m in ws.members(FLEET))
    assert ws.store.staged_member_runs("sales.") == []


def test_rows_without_a_member_are_rejected_and_the_rest_stored(ws: Workspace) -> None:
    df = fleet_rows(STORES, 30)
    df.loc[[0, 5], "store"] = None
    r = ingest_frame(ws, FLEET, df)
    assert (r.inserted, r.rejected) == (88, 2)
    assert {x.reason for x in r.rejects} == {"missing fleet member (store)"}


def test_a_member_trains_on_its_own_rows(ws: Workspace) -> None:
    ingest_frame(ws, FLEET, fleet_rows(STORES, 120))
    v = train(ws, "sales.s1", deploy=True)
    assert v.version.model == "sales.s1" and v.version.n_rows <= 120
    assert ws.store.roles("sales.s1").champion == v.version.version
    assert ws.store.roles("sales.s0").champion is None
    seg = ws.store.segments("sales.s1", ROWS)
    assert sum(s.n_rows for s in seg) == 120
