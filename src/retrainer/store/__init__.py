"""Storage: one SQLAlchemy store for SQLite and PostgreSQL, and the artifact store.

>>> store = SqlStore("sqlite://")
>>> store.list_models()
[]
"""

from __future__ import annotations

from .artifacts import ArtifactStore, StoredArtifact
from .engine import migrate, safe_url
from .feedback import FeedbackStore
from .leases import LeaseStore
from .monitor_store import MonitorStore
from .predlog import PredictionLogStore
from .registry import RegistryStore, role_of
from .rows import RowsStore


class SqlStore(
    FeedbackStore, MonitorStore, LeaseStore, PredictionLogStore, RowsStore, RegistryStore
):
    """The store: registry, training rows, the prediction log."""


__all__ = ["ArtifactStore", "SqlStore", "StoredArtifact", "migrate", "role_of", "safe_url"]
