"""Prediction inputs stored once per request; predictions reference them by key and row.

Existing predictions keep their features: each becomes a one-row input (key ``p<id>``).
The time index moves to the inputs (drift checks read them by time) and the entity index
covers only rows that have an entity id. The downgrade gives every prediction its input row
back as its features (a shadow's too) and drops the inputs.

Revision ID: 0004
Revises: 0003
"""

import json
import math

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

_NOT_NULL = sa.text("entity_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "prediction_inputs",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_prediction_inputs_time", "prediction_inputs", ["model", "created_at"], unique=False
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("input_row", sa.Integer(), nullable=True))
    op.execute(
        "INSERT INTO prediction_inputs (key, model, created_at, body) "
        "SELECT 'p' || CAST(id AS VARCHAR(20)), model, created_at, "
        "'{\"row\": ' || features || '}' FROM predictions"
    )
    op.execute("UPDATE predictions SET input_key = 'p' || CAST(id AS VARCHAR(20)), input_row = 0")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.alter_column("input_key", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("input_row", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("features")
        batch_op.drop_index("ix_predictions_time")
        batch_op.drop_index("ix_predictions_entity")
        batch_op.create_index(
            "ix_predictions_entity",
            ["model", "entity_id"],
            unique=False,
            sqlite_where=_NOT_NULL,
            postgresql_where=_NOT_NULL,
        )


def _row_features(body: str | None, row: int) -> str:
    """One prediction's features as 0003 kept them: JSON text, non-finite numbers as null."""
    if body is None:
        return "{}"
    obj = json.loads(body)  # accepts NaN, as the serving path does
    rows = obj["rows"] if "rows" in obj else [obj["row"]]
    found = rows[row] if 0 <= row < len(rows) and isinstance(rows[row], dict) else {}
    clean = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in found.items()
    }
    return json.dumps(clean)


def downgrade() -> None:
    """Each prediction gets its input row back as its own features; then the inputs go."""
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("features", sa.Text(), nullable=True))
    conn = op.get_bind()
    select = sa.text(
        "SELECT p.id, p.input_row, i.body FROM predictions p "
        "LEFT JOIN prediction_inputs i ON i.key = p.input_key "
        "WHERE p.id > :last ORDER BY p.id LIMIT 5000"
    )
    update = sa.text("UPDATE predictions SET features = :features WHERE id = :id")
    last = 0
    while rows := conn.execute(select, {"last": last}).all():
        conn.execute(update, [{"id": r[0], "features": _row_features(r[2], r[1])} for r in rows])
        last = rows[-1][0]
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.alter_column("features", existing_type=sa.Text(), nullable=False)
        batch_op.drop_index("ix_predictions_entity")
        batch_op.create_index("ix_predictions_entity", ["model", "entity_id"], unique=False)
        batch_op.create_index("ix_predictions_time", ["model", "created_at"], unique=False)
        batch_op.drop_column("input_row")
        batch_op.drop_column("input_key")
    op.drop_index("ix_prediction_inputs_time", table_name="prediction_inputs")
    op.drop_table("prediction_inputs")
