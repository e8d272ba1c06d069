"""Storage: one SQLAlchemy store for SQLite and PostgreSQL, and the artifact store.

>>> store = SqlStore("sqlite://")
>>> store.list_models()
[]
"""

from __future__ import annotations

from .artifacts import ArtifactStore, StoredArtifact
from .decisions import DecisionStore
from .engine import migrate, safe_url
from .leases import LeaseStore
from .monitor_store import MonitorStore
from .predlog import PredictionFeatures, PredictionLogStore
from .state import StateStore
from .versions import RegistryStore, role_of


class SqlStore(
    DecisionStore,
    StateStore,
    MonitorStore,
    LeaseStore,
    PredictionFeatures,
    PredictionLogStore,
    RegistryStore,
):
    """The store: registry, training rows and actuals (columnar segments), prediction log,
    monitor aggregates, decisions and leases."""


__all__ = ["ArtifactStore", "SqlStore", "StoredArtifact", "migrate", "role_of", "safe_url"]
