"""Prediction inputs stored once per request; predictions reference them by key and row.

Existing predictions keep their features: each becomes a one-row input (key ``p<id>``).
The time index moves to the inputs (drift checks read them by time) and the entity index
covers only rows that have an entity id.

Revision ID: 0004
Revises: 0003
"""

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


def downgrade() -> None:
    raise NotImplementedError(
        "Revision 0004 moved prediction features into prediction_inputs and cannot be undone "
        "in place: restore a backup taken before the upgrade (retrainer backup/restore)."
    )
