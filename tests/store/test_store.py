"""One store suite, run on SQLite and PostgreSQL (the ``store_url`` fixture)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from alembic import command
from sqlalchemy import UniqueConstraint, func, inspect, select

from retrainer.core.entities import ModelVersion
from retrainer.core.errors import ConflictError, StoreUnavailable, VersionNotFound
from retrainer.store import SqlStore
from retrainer.store import schema as t
from retrainer.store.bulk import insert_keys, lookup_keys
from retrainer.store.engine import (
    HEAD,
    _alembic_config,
    current_revision,
    head_revision,
    make_engine,
    write_transaction,
)
from retrainer.store.feedback import untimed_keys
from retrainer.store.predlog import request_record
from retrainer.store.rows import RowsAdded
from retrainer.store.segments import encode


def draft(model: str = "m", parent: str | None = None, family: str = "lightgbm") -> ModelVersion:
    return ModelVersion(
        model=model,
        version="0.0.0",
        parent=parent,
        family=family,
        params={"a": 1},
        created_at=datetime(2024, 1, 1),
        created_by="manual",
        reason="test",
        kind="initial",
        train_start=datetime(2023, 1, 1),
        train_end=datetime(2023, 12, 31),
        n_rows=10,
        fingerprint="f" * 64,
        feature_schema={"numeric": ["x"], "categorical": []},
        metrics={"accuracy": 0.8, "roc_auc": float("nan")},
        artifact_uri="mem://x",
        sha256="0" * 64,
        hmac=None,
        size_bytes=3,
    )


@pytest.fixture
def store(store_url: str) -> SqlStore:
    s = SqlStore(store_url)
    yield s
    s.close()


def test_migrated_schema_matches_metadata(store: SqlStore) -> None:
    assert current_revision(store.engine) == head_revision()
    insp = inspect(store.engine)
    for table in t.metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name


def test_the_migrations_give_the_schema_a_new_store_gets(store_url: str) -> None:
    """A new store gets the newest schema in one step; the migrations must arrive at the same
    tables, columns and indexes (and HEAD must name the newest migration)."""
    assert head_revision() == HEAD
    migrated = make_engine(store_url)
    with write_transaction(migrated) as conn:
        command.upgrade(_alembic_config(conn), "head")
    insp = inspect(migrated)
    for table in t.metadata.sorted_tables:
        cols = {c["name"]: c["nullable"] for c in insp.get_columns(table.name)}
        assert cols == {c.name: c.nullable for c in table.columns}, table.name
        indexes = {
            i["name"]: tuple(i["column_names"])
            for i in insp.get_indexes(table.name)
            if not i.get("duplicates_constraint")  # PostgreSQL lists a unique constraint too
        }
        declared = {i.name: tuple(c.name for c in i.columns) for i in table.indexes}
        assert indexes == declared, table.name
        uniques = {
            u["name"]: tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name)
        }
        wanted = {
            u.name: tuple(c.name for c in u.columns)
            for u in table.constraints
            if isinstance(u, UniqueConstraint)
        }
        assert uniques == wanted, table.name
        pk = tuple(insp.get_pk_constraint(table.name)["constrained_columns"])
        assert pk == tuple(c.name for c in table.primary_key.columns), table.name
    migrated.dispose()


def test_semantic_versions_and_lineage(store: SqlStore) -> None:
    v1 = store.register(draft(), "major", deploy=True)
    assert v1.version == "1.0.0"
    v2 = store.register(draft(parent="1.0.0"), "minor")
    v3 = store.register(draft(parent="1.0.0"), "patch")
    v4 = store.register(draft(parent="1.0.0"), "patch")
    v5 = store.register(draft(parent="1.1.0", family="randomforest"), "major")
    assert [v.version for v in (v2, v3, v4, v5)] == ["1.1.0", "1.0.1", "1.0.2", "2.0.0"]
    listed = store.list_versions("m")
    assert [v.version for v in listed] == ["1.0.0", "1.0.1", "1.0.2", "1.1.0", "2.0.0"]
    got = store.get_version("m", "1.0.2")
    assert got.parent == "1.0.0" and got.metrics["accuracy"] == 0.8
    assert got.metrics["roc_auc"] != got.metrics["roc_auc"]  # NaN survives as NaN


def test_exactly_one_champion_and_event_log(store: SqlStore) -> None:
    store.register(draft(), "major", deploy=True, reason="first")
    store.register(draft(parent="1.0.0"), "minor", deploy=True, reason="second")
    roles = store.roles("m")
    assert roles.champion == "1.1.0"
    events = store.events("m")
    assert [(e.action, e.from_version, e.to_version) for e in events] == [
        ("deploy", None, "1.0.0"),
        ("deploy", "1.0.0", "1.1.0"),
    ]
    assert store.champion_stack("m") == ["1.0.0", "1.1.0"]
    store.move_champion("m", "1.0.0", "rollback", "bad", "manual")
    assert store.roles("m").champion == "1.0.0"
    assert store.champion_stack("m") == ["1.0.0"]


def test_move_champion_guards_against_races(store: SqlStore) -> None:
    store.register(draft(), "major", deploy=True)
    store.register(draft(parent="1.0.0"), "minor")
    with pytest.raises(ConflictError, match="changed"):
        store.move_champion("m", "1.1.0", "deploy", "x", "manual", expect_champion="9.9.9")
    assert store.roles("m").champion == "1.0.0"


def test_unknown_version_lists_known(store: SqlStore) -> None:
    store.register(draft(), "major")
    with pytest.raises(VersionNotFound, match=r"no version 1\.4\.0\. Known versions: 1\.0\.0"):
        store.get_version("m", "1.4.0")


def test_failed_transaction_leaves_nothing(store: SqlStore) -> None:
    store.register(draft(), "major", deploy=True)
    bad = dataclasses.replace(draft(parent="1.0.0"), n_rows=None)  # violates NOT NULL
    with pytest.raises(Exception):  # noqa: B017 - any driver error
        store.register(bad, "minor", deploy=True)
    assert store.roles("m").champion == "1.0.0"
    assert len(store.list_versions("m")) == 1


def test_challenger_roles(store: SqlStore) -> None:
    store.register(draft(), "major", deploy=True)
    store.register(draft(parent="1.0.0"), "minor", challenger=("canary", 0.05))
    ch = store.roles("m").challenger
    assert ch is not None and (ch.version, ch.mode, ch.fraction) == ("1.1.0", "canary", 0.05)
    rev = store.roles_revision("m")
    store.move_champion("m", "1.1.0", "promote", "held", "policy")
    roles = store.roles("m")
    assert roles.champion == "1.1.0" and roles.challenger is None
    assert store.roles_revision("m") > rev


def _rows(ids: range, now: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_id": [str(i) for i in ids],
            "event_time": [now + timedelta(days=i) for i in ids],
            "target": [i % 2 for i in ids],
            "x": [float(i) for i in ids],
            "c": [None for _ in ids],
        }
    )


def test_training_rows_unique_per_entity(store: SqlStore) -> None:
    now = datetime(2024, 1, 1)
    rows = _rows(range(20), now)
    assert store.add_training_frame("m", rows, "file") == RowsAdded(20, 0)
    assert store.add_training_frame("m", rows[:10], "file") == RowsAdded(0, 10)
    assert store.add_training_frame("m", _rows(range(15, 25), now), "api") == RowsAdded(5, 5)
    frame = store.training_frame("m", start=now + timedelta(days=5), end=now + timedelta(days=19))
    assert len(frame) == 15 and list(frame["x"][:2]) == [5.0, 6.0]
    assert frame["c"].isna().all()
    n, lo, hi = store.training_stats("m")
    assert (n, lo, hi) == (25, now, now + timedelta(days=24))
    after = store.training_frame("m", after=now + timedelta(days=21), columns=["x"])
    assert list(after["entity_id"]) == ["22", "23", "24"] and "c" not in after.columns
    assert store.count_training_rows("m", after=now + timedelta(days=21)) == 3
    assert store.known_entity_ids("m", ["3", "24", "99"]) == {"3", "24"}


def test_a_segment_holds_a_chunk_and_reads_prune_by_time(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import retrainer.store.rows as rows_module

    monkeypatch.setattr(rows_module, "SEGMENT_ROWS", 4)
    now = datetime(2024, 1, 1)
    assert store.add_training_frame("m", _rows(range(10), now), "file").inserted == 10
    found = store.segments("m", "rows")
    assert [s.n_rows for s in found] == [4, 4, 2]
    assert [s.min_time for s in found] == [now, now + timedelta(days=4), now + timedelta(days=8)]
    late = store.segments("m", "rows", start=now + timedelta(days=8))
    assert [s.id for s in late] == [found[-1].id]  # the others are never fetched
    assert store.training_frame("m")["entity_id"].tolist() == [str(i) for i in range(10)]


def test_small_segments_are_merged_once_there_are_many(store: SqlStore) -> None:
    now = datetime(2024, 1, 1)
    for day in range(20):  # a day of feedback at a time: twenty 3-row segments
        frame = _rows(range(day * 3, day * 3 + 3), now)
        assert store.add_training_frame("m", frame, "feedback").inserted == 3
    found = store.segments("m", "rows")
    assert len(found) == 5 and found[0].n_rows == 48  # sixteen merged, four not yet
    assert found[0].min_time == now and found[0].max_time == now + timedelta(days=47)
    frame = store.training_frame("m")
    assert frame["entity_id"].tolist() == [str(i) for i in range(60)]
    assert store.add_training_frame("m", _rows(range(60), now), "feedback").inserted == 0


def test_keys_insert_in_bulk_and_report_what_was_new(store: SqlStore) -> None:
    with store.write("m") as conn:
        fresh = insert_keys(conn, "m", "rows", ["a", "b", "c"], 1)
        again = insert_keys(conn, "m", "rows", ["c", "d", "a"], 2)
        timed = insert_keys(conn, "m", "actuals", untimed_keys(["a", "b"]), 3)
        found = lookup_keys(conn, "m", "rows", ["d", "zz", "b"])
    assert fresh.tolist() == [True, True, True] and again.tolist() == [False, True, False]
    assert timed.tolist() == [True, True]  # another kind
    assert sorted(map(tuple, found.tolist())) == [(0, 2), (2, 1)]


def test_prediction_log_group_commit(store: SqlStore) -> None:
    rows = [
        {
            "model": "m",
            "request_id": "r",
            "entity_id": str(i),
            "version": "1.0.0",
            "arm": "champion",
            "features": "{}",
            "output": 1,
            "proba": 0.5,
            "created_at": datetime(2024, 1, 1),
        }
        for i in range(100)
    ]
    assert store.log_predictions(rows) == 100
    assert store.count_predictions("m") == 100


def test_prediction_ids_become_visible_in_order(store: SqlStore) -> None:
    """The monitor folds above an id watermark: a batch must not commit ids below those of a
    batch still in flight. On PostgreSQL a second writer waits for the first's commit."""
    import threading

    from sqlalchemy import text

    from retrainer.store.predlog import LOG_LOCK, request_record

    rec = request_record("m", "r", "1.0.0", "champion", datetime(2024, 1, 1), "{}", ["a"], [1])
    if store.dialect != "postgresql":
        assert store.log_predictions([rec]) == 1  # SQLite: one writer at a time by design
        return
    done = threading.Event()
    with store.engine.connect() as other, other.begin():  # a writer mid-batch holds the lock
        other.execute(text("SELECT pg_advisory_xact_lock(:s, hashtext('m'))"), {"s": LOG_LOCK})
        writer = threading.Thread(target=lambda: (store.log_predictions([rec]), done.set()))
        writer.start()
        assert not done.wait(0.5)  # waits for the batch in flight
        assert store.count_predictions("m") == 0
    writer.join(30)
    assert done.is_set() and store.count_predictions("m") == 1
    other_model = {**rec, "model": "n"}  # another model's batches do not wait
    with store.engine.connect() as other, other.begin():
        other.execute(text("SELECT pg_advisory_xact_lock(:s, hashtext('m'))"), {"s": LOG_LOCK})
        assert store.log_predictions([other_model]) == 1


def test_unreachable_store_names_url_without_password() -> None:
    with pytest.raises(StoreUnavailable) as info:
        SqlStore("postgresql+psycopg://app:hunter2@127.0.0.1:1/nowhere")
    assert "hunter2" not in str(info.value)
    assert "127.0.0.1:1/nowhere" in str(info.value)


def test_a_request_input_is_stored_once_and_shared_by_its_arms(store: SqlStore) -> None:
    at = datetime(2024, 1, 1)
    body = '{"rows": [{"x": 1.5, "entity_id": "a"}, {"x": NaN}, {"x": 3}]}'
    served = request_record(
        "m", "r", "1.0.0", "champion", at, body, ["a", None, "c"], [1.0, 2, "z"]
    )
    shadow = request_record(
        "m", "r", "1.1.0", "shadow", at, None, ["a", "c"], [0.5, 0.25],
        input_key=served["input_key"], input_rows=[0, 2],
    )  # fmt: skip
    assert store.log_predictions([served, shadow]) == 5
    assert store.count_predictions("m") == 5
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.prediction_inputs)).scalar() == 1
    cands = store.prediction_candidates("m", ["a", "c"])
    assert sorted(zip(cands["pos"], cands["served"], strict=True)) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    feats = store.input_features(cands["input_key"].tolist(), cands["input_row"].tolist(), ["x"])
    by_arm = dict(zip(zip(cands["pos"], cands["served"], strict=True), feats["x"], strict=True))
    assert by_arm[(1, 0)] == by_arm[(1, 1)] == 3  # the shadow arm shares the request's input
    assert by_arm[(0, 0)] == 1.5
    (chunk,) = list(store.iter_prediction_features("m", since=at))
    assert len(chunk) == 3 and chunk["x"].isna().tolist() == [False, True, False]  # NaN kept
    assert list(store.iter_prediction_features("m", since=at + timedelta(seconds=1))) == []


def test_a_batch_input_is_stored_as_parquet_and_read_once(store: SqlStore) -> None:
    at = datetime(2024, 1, 1)
    inputs = pd.DataFrame({"x": [0.5, 1.5, 2.5], "c": ["a", None, "b"]})
    data = encode(pa.Table.from_pandas(inputs))
    rec = request_record("m", "r", "1.0.0", "champion", at, data, ["e0", "e1", "e2"], [0, 1, 0])
    assert store.log_predictions([rec]) == 3
    with store.read() as conn:
        body, stored = conn.execute(
            select(t.prediction_inputs.c.body, t.prediction_inputs.c.data)
        ).one()
    assert body is None and bytes(stored) == data
    feats = store.input_features([rec["input_key"]] * 2, [2, 0], ["x", "c", "missing"])
    assert feats["x"].tolist() == [2.5, 0.5] and feats["c"].tolist() == ["b", "a"]
    assert feats["missing"].isna().all()
    (chunk,) = list(store.iter_prediction_features("m"))
    assert chunk["x"].tolist() == [0.5, 1.5, 2.5]


def test_iterating_inputs_pages_through_equal_times(store: SqlStore) -> None:
    at = datetime(2024, 1, 1)
    recs = [
        request_record(
            "m", f"r{i}", "1.0.0", "champion", at, f'{{"row": {{"i": {i}}}}}', [None], [0.0]
        )
        for i in range(7)
    ]
    store.log_predictions(recs)
    chunks = list(store.iter_prediction_features("m", chunk=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert sorted(i for c in chunks for i in c["i"]) == list(range(7))


def test_a_replayed_input_is_not_stored_twice(store: SqlStore) -> None:
    rec = request_record("m", "r", "1.0.0", "champion", datetime(2024, 1, 1), '{"row": {}}',
                         ["e"], [1])  # fmt: skip
    store.log_predictions([rec])
    store.log_predictions([rec])  # a spool chunk sent again after a crash
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.prediction_inputs)).scalar() == 1


def test_rows_without_an_entity_id_stay_out_of_the_entity_index(store: SqlStore) -> None:
    with store.read() as conn:
        if store.dialect == "sqlite":
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_predictions_entity'"
            ).scalar()
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM predictions "
                "WHERE model = 'm' AND entity_id IN ('a', 'b')"
            ).all()  # the lookup feedback makes still uses the partial index
            assert "ix_predictions_entity" in " ".join(str(r[-1]) for r in plan)
        else:
            sql = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_predictions_entity'"
            ).scalar()
    assert "entity_id IS NOT NULL" in str(sql)


def test_downgrading_0004_gives_each_prediction_its_features_back(store_url: str) -> None:
    s = SqlStore(store_url)
    at = datetime(2024, 1, 1)
    served = request_record(
        "m",
        "r",
        "1.0.0",
        "champion",
        at,
        '{"rows": [{"x": 1.5}, {"x": NaN, "c": "a"}]}',
        ["a", "b"],
        [1, 0],
    )
    shadow = request_record("m", "r", "1.1.0", "shadow", at, None, ["b"], [1],
                            input_key=served["input_key"], input_rows=[1])  # fmt: skip
    s.log_predictions([served, shadow])
    with write_transaction(s.engine) as conn:
        command.downgrade(_alembic_config(conn), "0003")
    with s.read() as conn:
        got = conn.exec_driver_sql(
            "SELECT entity_id, arm, features FROM predictions ORDER BY id"
        ).all()
        tables = inspect(conn).get_table_names()
    s.close()
    assert [(e, a, json.loads(f)) for e, a, f in got] == [
        ("a", "champion", {"x": 1.5}),
        ("b", "champion", {"x": None, "c": "a"}),
        ("b", "shadow", {"x": None, "c": "a"}),
    ]
    assert "prediction_inputs" not in tables


def test_upgrading_keeps_the_features_of_predictions_logged_before_0004(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "0003")
        conn.exec_driver_sql(
            "INSERT INTO predictions (model, request_id, entity_id, version, arm, features, "
            "output, proba, created_at) VALUES ('m', 'r', 'e1', '1.0.0', 'champion', "
            "'{\"x\": 2.5}', '1', 0.7, '2024-01-01 00:00:00.000000')"
        )
    engine.dispose()
    s = SqlStore(url)  # migrates to head
    assert current_revision(s.engine) == head_revision()
    cands = s.prediction_candidates("m", ["e1"])
    feats = s.input_features(cands["input_key"].tolist(), cands["input_row"].tolist(), ["x"])
    assert feats["x"].tolist() == [2.5]
    (chunk,) = s.iter_prediction_features("m")
    assert chunk.to_dict("records") == [{"x": 2.5}]
    s.close()


def test_upgrading_0004_moves_training_rows_and_actuals_into_segments(store_url: str) -> None:
    """Migration 0005 on a store with rows: the training rows and actuals become segments with
    their values and types, an actual without a time keeps a key, and the monitor's watermark
    moves from the last actual folded to the last segment folded (nothing counted twice)."""
    from sqlalchemy import JSON, DateTime, column, table

    engine = make_engine(store_url)
    at = datetime(2024, 3, 1)
    rows_t = table(
        "training_rows",
        *(column(c) for c in ("model", "entity_id", "source")),
        column("event_time", DateTime()),
        column("ingested_at", DateTime()),
        column("target", JSON()),
        column("features", JSON()),
    )
    acts_t = table(
        "actuals",
        *(column(c) for c in ("id", "model", "entity_id", "prediction_id")),
        column("event_time", DateTime()),
        column("received_at", DateTime()),
        column("value", JSON()),
    )
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "0004")
        conn.execute(
            rows_t.insert(),
            [
                {"model": "m", "entity_id": f"e{i}", "source": "file",
                 "event_time": at + timedelta(days=i), "ingested_at": at, "target": i % 2,
                 "features": {"x": float(i), "c": ["a", "b", None][i]}}
                for i in range(3)
            ],
        )  # fmt: skip
        conn.execute(
            acts_t.insert(),
            [
                {"id": 1, "model": "m", "entity_id": "e0", "prediction_id": 11,
                 "event_time": at, "received_at": at, "value": 1},
                {"id": 2, "model": "m", "entity_id": "e1", "prediction_id": None,
                 "event_time": None, "received_at": at, "value": 0},
                {"id": 3, "model": "m", "entity_id": "e2", "prediction_id": 13,
                 "event_time": at, "received_at": at + timedelta(hours=1), "value": 1},
            ],
        )  # fmt: skip
        conn.exec_driver_sql(
            "INSERT INTO monitor_watermarks (model, last_prediction_id, last_actual_id, "
            "updated_at) VALUES ('m', 0, 2, '2024-03-01 00:00:00')"
        )
    engine.dispose()
    s = SqlStore(store_url)  # migrates to head
    try:
        frame = s.training_frame("m")
        assert frame["entity_id"].tolist() == ["e0", "e1", "e2"]
        assert frame["x"].tolist() == [0.0, 1.0, 2.0] and frame["target"].tolist() == [0, 1, 0]
        assert frame["c"].tolist()[:2] == ["a", "b"] and pd.isna(frame["c"].iloc[2])
        acts = s.actuals_frame("m").set_index("entity_id")
        assert acts.loc["e0", "prediction_id"] == 11 and pd.isna(acts.loc["e1", "prediction_id"])
        (folded,) = acts.loc[["e0", "e1"], "segment"].unique().tolist()  # one run, folded
        assert acts.loc["e2", "segment"] > folded  # another run, not folded yet
        assert s.monitor_watermark("m") == (0, folded)
        with s.write("m") as conn:  # the untimed actual's key came along: a resend is known
            again = pd.DataFrame(
                {"entity_id": ["e1"], "event_time": pd.Series([pd.NaT], dtype="datetime64[us]"),
                 "value": [0], "prediction_id": pd.array([None], dtype="Int64")}
            )  # fmt: skip
            assert s.append_actuals(conn, "m", again, "feedback").tolist() == [False]
    finally:
        s.close()
