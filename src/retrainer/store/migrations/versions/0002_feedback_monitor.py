"""Feedback offsets (resumable JSONL tailing), monitoring aggregates with their watermark, and
(model, id) indexes on predictions and actuals so a fold reads only rows above the watermark.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

_COUNTS = ["n_pred", "n_conf", "n_labelled", "n_correct", "n_proba", "tp", "fp", "tn", "fn"]
_SUMS = ["sum_conf", "sum_brier", "sum_logloss", "sum_abs", "sum_sq", "sum_ape", "sum_y", "sum_y2"]


def upgrade() -> None:
    op.create_table(
        "feedback_offsets",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", "source"),
    )
    op.create_table(
        "monitor_aggregates",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _COUNTS[:3]],
        sa.Column("sum_conf", sa.Float(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _COUNTS[3:]],
        *[sa.Column(name, sa.Float(), nullable=False) for name in _SUMS[1:]],
        sa.PrimaryKeyConstraint("model", "version", "arm", "hour"),
    )
    op.create_table(
        "monitor_watermarks",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("last_prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("last_actual_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model"),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index("ix_predictions_model_id", ["model", "id"], unique=False)
    with op.batch_alter_table("actuals", schema=None) as batch_op:
        batch_op.create_index("ix_actuals_model_id", ["model", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("actuals", schema=None) as batch_op:
        batch_op.drop_index("ix_actuals_model_id")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_model_id")
    op.drop_table("monitor_watermarks")
    op.drop_table("monitor_aggregates")
    op.drop_table("feedback_offsets")
