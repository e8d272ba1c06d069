"""Tables, as SQLAlchemy Core. Rows become entities in ``store.sql`` and never leave it.

The Alembic migrations in ``store/migrations`` create exactly these tables; a test checks that
the migrated database and this metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("major", Integer, nullable=False),
    Column("minor", Integer, nullable=False),
    Column("patch", Integer, nullable=False),
    Column("parent", String(32)),
    Column("family", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("params", Json, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("train_start", DateTime),
    Column("train_end", DateTime),
    Column("n_rows", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("feature_schema", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    Column("details", Json, nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("hmac", String(64)),
    Column("size_bytes", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    UniqueConstraint("model", "version", name="uq_versions_model_version"),
)

roles = Table(
    "roles",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("champion", String(32)),
    Column("champion_since", DateTime),
    Column("challenger", String(32)),
    Column("challenger_mode", String(16)),
    Column("challenger_fraction", Float),
    Column("challenger_started", DateTime),
    Column("challenger_step", Integer, nullable=False, default=0),
    Column("revision", Integer, nullable=False, default=0),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_version", String(32)),
    Column("to_version", String(32)),
    Column("reason", Text, nullable=False),
    Column("triggered_by", String(64), nullable=False),
    Column("forced", Boolean, nullable=False, default=False),
    Column("gate", Json),
    Column("created_at", DateTime, nullable=False),
    Index("ix_deployments_model", "model", "id"),
)

# Bulk rows (training rows, actuals) live in columnar segments: Parquet bytes, one SQL row per
# segment with what reads prune on (see ``store.segments``).
segments = Table(
    "segments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", String(32), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("min_time", DateTime),
    Column("max_time", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_segments_model", "model", "kind", "id"),
)

# The keys that de-duplicate segment rows: a training row's entity id; an actual's entity id
# and event time (``store.feedback.actual_keys``). Each points at the segment holding its row.
# Clustered on the key on SQLite (no rowid), so a batch of sorted keys is written in order.
row_keys = Table(
    "row_keys",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("key", String(192), primary_key=True),
    Column("segment", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# An actual stored with no prediction and joined later (``monitor.late_join``): its segment and
# row, and the prediction it joined. Rare by nature, so one SQL row each.
actual_links = Table(
    "actual_links",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("segment", BigInteger, primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("prediction_id", BigInteger, nullable=False),
    Column("linked_at", DateTime, nullable=False),
)

# A request's inputs are stored once: as the JSON text it arrived in ({"rows": [...]} or
# {"row": {...}}) from the REST service, or as Parquet (``data``) from a batch; each prediction
# names its input by key and row index. Per-row work on the serving path is then one narrow
# insert, and a shadow arm shares the request's input.
prediction_inputs = Table(
    "prediction_inputs",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("model", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("body", Text),
    Column("data", LargeBinary),
    Index("ix_prediction_inputs_time", "model", "created_at"),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("entity_id", String(128)),
    Column("version", String(32), nullable=False),
    Column("arm", String(16), nullable=False),
    Column("input_key", String(32), nullable=False),
    Column("input_row", Integer, nullable=False),
    Column("output", Json, nullable=False),
    Column("proba", Float),
    Column("created_at", DateTime, nullable=False),
    # Only rows with an entity id can be joined to actuals: the others stay out of the index.
    Index(
        "ix_predictions_entity",
        "model",
        "entity_id",
        sqlite_where=text("entity_id IS NOT NULL"),
        postgresql_where=text("entity_id IS NOT NULL"),
    ),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("reasons", Json, nullable=False),
    Column("numbers", Json, nullable=False),
    Column("taken_at", DateTime, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("outcome", Text),
    Index("ix_decisions_model", "model", "id"),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job", String(128), nullable=False),
    Column("model", String(64)),
    Column("scheduled_for", DateTime),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text),
    Column("owner", String(128), nullable=False),
)

# Feedback and monitoring (migration 0002).

feedback_offsets = Table(
    "feedback_offsets",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("source", String(512), primary_key=True),
    Column("inode", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("line", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

monitor_aggregates = Table(
    "monitor_aggregates",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("arm", String(16), primary_key=True),
    Column("hour", DateTime, primary_key=True),
    Column("n_pred", BigInteger, nullable=False, default=0),
    Column("n_conf", BigInteger, nullable=False, default=0),
    Column("sum_conf", Float, nullable=False, default=0.0),
    Column("n_labelled", BigInteger, nullable=False, default=0),
    Column("n_correct", BigInteger, nullable=False, default=0),
    Column("n_proba", BigInteger, nullable=False, default=0),
    Column("tp", BigInteger, nullable=False, default=0),
    Column("fp", BigInteger, nullable=False, default=0),
    Column("tn", BigInteger, nullable=False, default=0),
    Column("fn", BigInteger, nullable=False, default=0),
    Column("sum_brier", Float, nullable=False, default=0.0),
    Column("sum_logloss", Float, nullable=False, default=0.0),
    Column("sum_abs", Float, nullable=False, default=0.0),
    Column("sum_sq", Float, nullable=False, default=0.0),
    Column("sum_ape", Float, nullable=False, default=0.0),
    Column("sum_y", Float, nullable=False, default=0.0),
    Column("sum_y2", Float, nullable=False, default=0.0),
)

monitor_watermarks = Table(
    "monitor_watermarks",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("last_prediction_id", BigInteger, nullable=False),
    Column("last_actual_id", BigInteger, nullable=False),  # the last actuals segment folded
    Column("updated_at", DateTime, nullable=False),
)

# Monitoring folds rows above a watermark per model: (model, id) keeps that a range scan.
Index("ix_predictions_model_id", predictions.c.model, predictions.c.id)

# Small per-model state the loop keeps between turns (e.g. the concept-drift detector).
model_state = Table(
    "model_state",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("version", String(32)),
    Column("value", Json, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
