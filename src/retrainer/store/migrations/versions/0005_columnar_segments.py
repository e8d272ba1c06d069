"""Training rows and actuals move to columnar segments (Parquet in the ``segments`` table);
``row_keys`` indexes the actuals that have no event time; batch inputs may be stored as
Parquet. A training row is now identified by its id and event time (an id seen again at
another time is another observation).

Training rows become one segment per model and source (``SEGMENT_ROWS`` rows each at most, in
time order). Actuals become one segment per model and feedback run (runs share one receive
time), split where the monitor's watermark cut through a run, so the watermark moves from the
last actual id folded to the last segment folded. Actuals joined late keep their prediction.
Feature and label columns are typed from the stored values: numbers as float64 (integer labels
as int64), anything else as text. The downgrade turns the segments back into rows.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

SEGMENT_ROWS = 262_144


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


def _when(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v))


def _column(values: list[Any]) -> Any:
    """A list of JSON values as one typed column: numbers, integers, or text."""
    import pandas as pd

    s = pd.Series(values, dtype=object)
    present = s.dropna()
    if present.map(lambda v: isinstance(v, bool | int | float)).all():
        num = pd.to_numeric(s, errors="coerce").astype(float)
        if len(present) and (num.dropna() % 1 == 0).all() and s.notna().all():
            return num.astype("int64")
        return num
    return s.map(lambda v: None if v is None or v != v else str(v))  # NaN: missing


def _parquet(frame: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf, compression="snappy")
    return buf.getvalue()


def _put(
    conn: sa.Connection, model: str, kind: str, source: str, frame: Any, created: datetime
) -> int:
    times = frame["event_time"].dropna()
    data = _parquet(frame)
    res = conn.execute(
        sa.text(
            "INSERT INTO segments (model, kind, source, n_rows, min_time, max_time, created_at, "
            "size_bytes, data) VALUES (:model, :kind, :source, :n, :lo, :hi, :created, :size, "
            ":data) RETURNING id"
        ).bindparams(sa.bindparam("data", type_=sa.LargeBinary)),
        {
            "model": model,
            "kind": kind,
            "source": source,
            "n": len(frame),
            "lo": times.min().to_pydatetime() if len(times) else None,
            "hi": times.max().to_pydatetime() if len(times) else None,
            "created": created,
            "size": len(data),
            "data": data,
        },
    )
    return int(res.scalar_one())


def _keys(conn: sa.Connection, model: str, kind: str, keys: list[str], seg: int) -> None:
    if not keys:
        return
    conn.execute(
        sa.text(
            "INSERT INTO row_keys (model, kind, key, segment) VALUES (:model, :kind, :k, :seg)"
        ),
        [{"model": model, "kind": kind, "k": k, "seg": seg} for k in keys],
    )


def _chunks(conn: sa.Connection, sql: str, order: str) -> Iterator[Any]:
    last = 0
    while rows := conn.execute(
        sa.text(f"{sql} WHERE id > :last ORDER BY {order} LIMIT 50000"), {"last": last}
    ).all():
        yield rows
        last = rows[-1][0]


def _marks(conn: sa.Connection) -> list[tuple[str, int]]:
    q = sa.text("SELECT model, last_actual_id FROM monitor_watermarks")
    return [(str(m), int(a)) for m, a in conn.execute(q)]


def _training_rows(conn: sa.Connection) -> None:
    import pandas as pd

    groups: dict[tuple[str, str], list[Any]] = {}
    for rows in _chunks(
        conn,
        "SELECT id, model, source, entity_id, event_time, target, features, ingested_at "
        "FROM training_rows",
        "id",
    ):
        for r in rows:
            groups.setdefault((r[1], r[2]), []).append(r)
    for (model, source), rows in groups.items():
        rows.sort(key=lambda r: (_when(r[4]), r[0]))
        for lo in range(0, len(rows), SEGMENT_ROWS):
            part = rows[lo : lo + SEGMENT_ROWS]
            feats = pd.DataFrame.from_records([_json(r[6]) for r in part])
            frame = pd.DataFrame(
                {
                    "entity_id": [r[3] for r in part],
                    "event_time": pd.to_datetime([_when(r[4]) for r in part]),
                    "target": _column([_json(r[5]) for r in part]),
                }
            )
            for col in feats.columns:
                frame[col] = _column(feats[col].tolist())
            created = max(_when(r[7]) or datetime(1970, 1, 1) for r in part)
            _put(conn, model, "rows", source, frame, created)


def _actuals(conn: sa.Connection) -> None:
    import pandas as pd

    marks: dict[str, int] = dict(_marks(conn))
    groups: dict[tuple[str, Any, bool], list[Any]] = {}
    for rows in _chunks(
        conn,
        "SELECT id, model, entity_id, event_time, value, received_at, prediction_id FROM actuals",
        "id",
    ):
        for r in rows:
            folded = r[0] <= marks.get(r[1], 0)
            groups.setdefault((r[1], _when(r[5]), folded), []).append(r)
    ordered = sorted(groups.items(), key=lambda kv: kv[1][0][0])  # by first actual id
    last_folded: dict[str, int] = {}
    for (model, received, folded), rows in ordered:
        for lo in range(0, len(rows), SEGMENT_ROWS):
            part = rows[lo : lo + SEGMENT_ROWS]
            times = [_when(r[3]) for r in part]
            frame = pd.DataFrame(
                {
                    "entity_id": [r[2] for r in part],
                    "event_time": pd.to_datetime(times),
                    "value": _column([_json(r[4]) for r in part]),
                    "prediction_id": pd.array([r[6] for r in part], dtype="Int64"),
                }
            )
            seg = _put(conn, model, "actuals", "feedback", frame, received)
            untimed = [
                f"{e}\x1f" for e, t in zip(frame["entity_id"], times, strict=True) if t is None
            ]
            _keys(conn, model, "actuals", untimed, seg)
            if folded:
                last_folded[model] = seg
    conn.execute(sa.text("UPDATE monitor_watermarks SET last_actual_id = 0"))
    for model, seg in last_folded.items():
        conn.execute(
            sa.text("UPDATE monitor_watermarks SET last_actual_id = :s WHERE model = :m"),
            {"s": seg, "m": model},
        )


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("min_time", sa.DateTime(), nullable=True),
        sa.Column("max_time", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_segments_model", "segments", ["model", "kind", "id"], unique=False)
    op.create_table(
        "row_keys",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=192), nullable=False),
        sa.Column("segment", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "kind", "key"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "actual_links",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("segment", sa.BigInteger(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", "segment", "row"),
    )
    with op.batch_alter_table("prediction_inputs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)
    conn = op.get_bind()
    _training_rows(conn)
    _actuals(conn)
    with op.batch_alter_table("training_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_training_rows_time")
    op.drop_table("training_rows")
    with op.batch_alter_table("actuals", schema=None) as batch_op:
        batch_op.drop_index("ix_actuals_received")
        batch_op.drop_index("ix_actuals_model_id")
    op.drop_table("actuals")


def _segments(conn: sa.Connection, kind: str) -> Iterator[tuple[Any, ...]]:
    ids = (
        conn.execute(
            sa.text("SELECT id FROM segments WHERE kind = :k AND n_rows > 0 ORDER BY id"),
            {"k": kind},
        )
        .scalars()
        .all()
    )
    for seg in ids:
        yield conn.execute(
            sa.text("SELECT id, model, source, created_at, data FROM segments WHERE id = :i"),
            {"i": seg},
        ).one()


def _plain(v: Any) -> Any:
    import math

    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def downgrade() -> None:
    """Segments back to rows: a training row per segment row, an actual per actual."""
    import pyarrow.parquet as pq

    op.create_table(
        "training_rows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("event_time", sa.DateTime(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "entity_id", name="uq_training_rows_model_entity"),
    )
    op.create_index("ix_training_rows_time", "training_rows", ["model", "event_time"], unique=False)
    op.create_table(
        "actuals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("event_time", sa.DateTime(), nullable=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("prediction_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "model", "entity_id", "event_time", name="uq_actuals_model_entity_time"
        ),
    )
    op.create_index("ix_actuals_received", "actuals", ["model", "received_at"], unique=False)
    op.create_index("ix_actuals_model_id", "actuals", ["model", "id"], unique=False)
    conn = op.get_bind()
    rows_t = sa.table(
        "training_rows",
        *(sa.column(c) for c in ("model", "entity_id", "event_time", "source", "ingested_at")),
        sa.column("target", sa.JSON()),
        sa.column("features", sa.JSON()),
    )
    for _seg, model, source, created, data in _segments(conn, "rows"):
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
        feats = [c for c in frame.columns if c not in ("entity_id", "event_time", "target")]
        conn.execute(
            rows_t.insert(),
            [
                {
                    "model": model,
                    "entity_id": r["entity_id"],
                    "event_time": r["event_time"].to_pydatetime(),
                    "target": _plain(r["target"]),
                    "features": {c: _plain(r[c]) for c in feats},
                    "source": source,
                    "ingested_at": created,
                }
                for r in frame.to_dict("records")
            ],
        )
    links = {
        (r[0], r[1]): r[2]
        for r in conn.execute(sa.text("SELECT segment, row, prediction_id FROM actual_links"))
    }
    act_t = sa.table(
        "actuals",
        *(sa.column(c) for c in ("model", "entity_id", "event_time", "received_at")),
        sa.column("value", sa.JSON()),
        sa.column("prediction_id"),
    )
    marks: dict[str, int] = dict(_marks(conn))
    folded: dict[str, int] = {}
    for seg, model, _source, created, data in _segments(conn, "actuals"):
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
        out = []
        for i, r in enumerate(frame.to_dict("records")):
            pid = _plain(r["prediction_id"])
            t = r["event_time"]
            out.append(
                {
                    "model": model,
                    "entity_id": r["entity_id"],
                    "event_time": None if t is None or t != t else t.to_pydatetime(),
                    "value": _plain(r["value"]),
                    "received_at": created,
                    "prediction_id": links.get((seg, i), None if pid != pid else pid),
                }
            )
        conn.execute(act_t.insert(), out)
        if seg <= marks.get(model, 0):
            folded[model] = conn.execute(sa.text("SELECT MAX(id) FROM actuals")).scalar_one()
    conn.execute(sa.text("UPDATE monitor_watermarks SET last_actual_id = 0"))
    for model, last in folded.items():
        conn.execute(
            sa.text("UPDATE monitor_watermarks SET last_actual_id = :a WHERE model = :m"),
            {"a": last, "m": model},
        )
    op.drop_table("actual_links")
    op.drop_table("row_keys")
    op.drop_index("ix_segments_model", table_name="segments")
    op.drop_table("segments")
    batches = conn.execute(
        sa.text("SELECT key, data FROM prediction_inputs WHERE body IS NULL")
    ).all()
    for key, data in batches:  # a batch's Parquet input becomes its JSON text
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        body = json.dumps({"rows": [{k: _plain(v) for k, v in r.items()} for r in rows]})
        conn.execute(
            sa.text("UPDATE prediction_inputs SET body = :b WHERE key = :k"), {"b": body, "k": key}
        )
    with op.batch_alter_table("prediction_inputs", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("data")
