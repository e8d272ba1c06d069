"""Batch predict and feedback for a fleet: rows routed by the ``by`` column to each member's
champion (one output in input order, logged per member), actuals routed to each member's
feedback; through the lifecycle, the Python API and the CLI. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from jsonapi import JsonApi
from retrainer.api.facade import Retrainer
from retrainer.cli.main import app as cli
from retrainer.core.errors import InputError, NoChampion
from retrainer.core.fleet import member_name
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.fleet_feedback import fleet_feedback_frame
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_file, predict_frame, predict_rows, resolve_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

from .fleet_data import FLEET, fleet_rows, fleet_spec, write_csv

STORES = ["s0", "s1", "SKU 12/4"]


@pytest.fixture
def ws(store_url: str, tmp_path: Path) -> Any:
    spec = parse_spec(fleet_spec(store_url, str(tmp_path / "art")), environ={})
    with Workspace(spec) as w:
        ingest_frame(w, FLEET, fleet_rows(STORES, 100))
        for s in STORES:
            train(w, member_name(FLEET, s), deploy=True)
        yield w


def scoring_rows(seed: int = 7) -> pd.DataFrame:
    df = fleet_rows(STORES, 5, seed=seed).sample(frac=1, random_state=seed)
    df["day_id"] = [f"p-{i}" for i in range(len(df))]
    return df.drop(columns=["sales"]).reset_index(drop=True)


def own(ws: Workspace, df: pd.DataFrame) -> list[float]:
    """Each row scored by its own member's champion, one row at a time."""
    out = []
    for _, row in df.iterrows():
        p = resolve_predictor(ws, member_name(FLEET, row["store"]))
        out.append(predict_frame(p, row.to_frame().T.infer_objects())["prediction"].iloc[0])
    return out


def test_predict_rows_routes_by_member_in_input_order(ws: Workspace) -> None:
    df = scoring_rows()
    s = predict_rows(ws, FLEET, df, chunk_rows=4)
    assert s.frame["prediction"].tolist() == pytest.approx(own(ws, df))
    assert s.frame["day_id"].tolist() == df["day_id"].tolist()
    assert s.frame["member"].tolist() == [member_name(FLEET, x) for x in df["store"]]
    assert set(s.frame["member_version"]) == {"1.0.0"} and s.version == "1.0.0"
    for store in STORES:  # logged under each member, 5 rows each
        assert ws.store.count_predictions(member_name(FLEET, store)) == 5
    assert ws.store.count_predictions(FLEET) == 0


def test_predict_file_and_feedback_join_per_member(ws: Workspace, tmp_path: Path) -> None:
    df = scoring_rows(seed=3)
    r = predict_file(ws, FLEET, write_csv(df, tmp_path / "in.csv"), tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert r.rows == 15 and out["day_id"].tolist() == df["day_id"].tolist()
    assert out["prediction"].tolist() == pytest.approx(own(ws, df))
    actuals = df[["store", "day_id"]].assign(sales=1.0)
    actuals.loc[len(actuals)] = {"store": "nowhere", "day_id": "x", "sales": 1.0}
    res = fleet_feedback_frame(ws, FLEET, actuals)
    assert (res.received, res.matched, res.rejected) == (16, 15, 1)
    assert res.first_rejects[0].line == 16
    again = fleet_feedback_frame(ws, FLEET, actuals)  # idempotent
    assert (again.matched, again.duplicates) == (0, 15)


def test_an_entity_without_a_champion_names_it(ws: Workspace) -> None:
    df = pd.concat([scoring_rows(), scoring_rows().assign(store="nowhere")])
    with pytest.raises(NoChampion, match=r"'nowhere': no member 'sales.nowhere'"):
        predict_rows(ws, FLEET, df)
    with pytest.raises(InputError, match=r"column 'store' \(fleet.by"):
        predict_rows(ws, FLEET, scoring_rows().drop(columns=["store"]))
    with pytest.raises(InputError, match="--version does not apply"):
        predict_rows(ws, FLEET, scoring_rows(), version="1.0.0")


def test_python_api_and_cli(ws: Workspace, tmp_path: Path, monkeypatch: Any) -> None:
    rt = Retrainer.over(ws)
    df = scoring_rows(seed=4)
    res = rt.predict(FLEET, df)
    assert res.frame is not None and res.frame["member"].tolist()[0] == member_name(
        FLEET, df["store"].iloc[0]
    )
    fb = rt.feedback(FLEET, df[["store", "day_id"]].assign(sales=2.0))
    assert fb.matched == 15
    # the CLI: predict FILE and feedback FILE on the fleet
    config = tmp_path / "retrainer.yaml"
    config.write_text(yaml.safe_dump(fleet_spec(ws.spec.store, ws.spec.artifacts)))
    monkeypatch.setenv("RETRAINER_CONFIG", str(config))
    rows = scoring_rows(seed=8)
    rows["day_id"] = [f"cli-{i}" for i in range(len(rows))]
    src = write_csv(rows, tmp_path / "cli.csv")
    run = CliRunner().invoke(cli, ["predict", FLEET, str(src), "--out", str(tmp_path / "o.csv"),
                                   "--json"])  # fmt: skip
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["rows"] == 15
    actual = write_csv(rows[["store", "day_id"]].assign(sales=3.0), tmp_path / "a.csv")
    run = CliRunner().invoke(cli, ["feedback", FLEET, str(actual), "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["matched"] == 15


def fleet_cli(ws: Workspace, tmp_path: Path, monkeypatch: Any) -> None:
    config = tmp_path / "retrainer.yaml"
    config.write_text(yaml.safe_dump(fleet_spec(ws.spec.store, ws.spec.artifacts)))
    monkeypatch.setenv("RETRAINER_CONFIG", str(config))


def actual_lines(df: pd.DataFrame, value: float) -> str:
    return "".join(
        json.dumps({"store": r.store, "day_id": r.day_id, "sales": value}) + "\n"
        for r in df.itertuples()
    )


def test_cli_feedback_follow_routes_a_fleets_log_by_member(
    ws: Workspace, tmp_path: Path, monkeypatch: Any
) -> None:
    df = scoring_rows(seed=9)
    predict_rows(ws, FLEET, df)
    fleet_cli(ws, tmp_path, monkeypatch)
    log = tmp_path / "a.jsonl"
    log.write_text(actual_lines(df.iloc[:10], 1.0))
    follow = ["feedback", FLEET, str(log), "--follow", "--max-seconds", "0.1", "--json"]
    run = CliRunner().invoke(cli, follow)
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["matched"] == 10
    # the next run resumes after the lines read (the position is kept under the fleet)
    with log.open("a") as fh:
        fh.write(actual_lines(df.iloc[10:], 2.0) + "{not json\n")
    run = CliRunner().invoke(cli, follow)
    assert run.exit_code == 0, run.output
    got = json.loads(run.stdout)
    assert (got["received"], got["matched"], got["rejected"]) == (6, 5, 1)
    assert got["first_rejects"][0]["line"] == 16
    for s in STORES:  # every member has its own actuals, and only those
        member = member_name(FLEET, s)
        assert ws.store.count_actuals(member) == int((df["store"] == s).sum())


def test_cli_feedback_from_url_routes_a_fleets_feed_by_member(
    ws: Workspace, tmp_path: Path, monkeypatch: Any
) -> None:
    df = scoring_rows(seed=10)
    predict_rows(ws, FLEET, df)
    records = [
        {"store": r.store, "day_id": r.day_id, "sales": 1.0, "day": f"2024-02-{i + 1:02d}"}
        for i, r in enumerate(df.itertuples())
    ]
    body = json.dumps({"data": records}).encode()
    fleet_cli(ws, tmp_path, monkeypatch)
    with JsonApi(lambda path, auth: (200, "application/json", body)) as feed:
        pull = ["feedback", FLEET, "--from-url", feed.url + "/actuals", "--records", "data",
                "--json"]  # fmt: skip
        run = CliRunner().invoke(cli, pull)
        assert run.exit_code == 0, run.output
        got = json.loads(run.stdout)
        assert got["matched"] == 15
        assert got["cursor"] == "2024-02-15"
        run = CliRunner().invoke(cli, pull)  # the same records again: stored once
        assert json.loads(run.stdout)["duplicates"] == 15
