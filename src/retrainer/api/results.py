"""Typed results of the Python API: frozen dataclasses with ``to_dict()``.

``to_dict()`` is JSON-ready and is the shape ``retrainer COMMAND --json`` prints (the CLI
renders these same objects, so the two cannot drift apart). Where the command prints a list
(``versions``, ``drift``), ``to_dict()`` wraps it in a mapping and the command prints that
one key. Results the lifecycle already types (``IngestResult``, ``FeedbackResult``,
``MonitorReport``, ``DriftCheck``, ``TrainPlan``) are exported by ``retrainer`` as they are.

>>> r = ReportResult("weather", "/tmp/report.html", 2048)
>>> r.to_dict()
{'model': 'weather', 'out': '/tmp/report.html', 'bytes': 2048}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.entities import Decision, DeploymentEvent, ModelVersion
from ..core.views import candidate_role, decision_view, event_view, version_view

if TYPE_CHECKING:
    import pandas as pd

    from ..lifecycle.fine_tune import FineTuneResult as _FineTuned
    from ..lifecycle.maintain import MaintainResult as _Maintained
    from ..lifecycle.train import TrainResult as _Trained


def jsonsafe(value: Any) -> Any:
    """``store.convert.jsonsafe`` (NaN and infinities as null, times as ISO text), imported
    on use: the store package is not needed to define the results."""
    from ..store.convert import jsonsafe as safe

    return safe(value)


__all__ = [
    "DeployResult",
    "FineTuneResult",
    "MaintainResult",
    "PredictResult",
    "ReportResult",
    "TrainResult",
    "VersionInfo",
    "VersionList",
]


@dataclass(frozen=True)
class VersionInfo:
    """One registered version and its role (``champion``, ``challenger`` or ``archived``);
    ``record`` is the full registry entry."""

    model: str
    version: str
    role: str
    record: ModelVersion = field(repr=False, compare=False)
    detail: bool = False  # to_dict adds folds, params, calibration, serving cost

    @property
    def metrics(self) -> dict[str, float]:
        """Holdout metrics of the version."""
        return dict(self.record.metrics)

    def to_dict(self) -> dict[str, Any]:
        """One row of ``retrainer versions --json`` (with ``--detail`` when ``detail``)."""
        return jsonsafe(version_view(self.record, self.role, detail=self.detail))

    @classmethod
    def of(cls, v: ModelVersion, role: str, *, detail: bool = False) -> VersionInfo:
        return cls(v.model, v.version, role, v, detail)


@dataclass(frozen=True)
class VersionList:
    """A model's versions, oldest first; iterable and indexable like a tuple.

    ``to_dict()["versions"]`` is what ``retrainer versions --json`` prints."""

    model: str
    versions: tuple[VersionInfo, ...]

    @property
    def champion(self) -> VersionInfo | None:
        return next((v for v in self.versions if v.role == "champion"), None)

    def __iter__(self) -> Iterator[VersionInfo]:
        return iter(self.versions)

    def __len__(self) -> int:
        return len(self.versions)

    def __getitem__(self, i: int) -> VersionInfo:
        return self.versions[i]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "versions": [v.to_dict() for v in self.versions]}


@dataclass(frozen=True)
class TrainResult:
    """A version just trained: where it went (``role``; ``deployed``: it became champion)
    and the gate's verdict against the champion (``None`` when there was none to beat)."""

    model: str
    version: str
    role: str
    deployed: bool
    gate: dict[str, Any] | None
    record: ModelVersion = field(repr=False, compare=False)

    @property
    def metrics(self) -> dict[str, float]:
        """Holdout metrics of the new version."""
        return dict(self.record.metrics)

    def to_dict(self) -> dict[str, Any]:
        """What ``retrainer train MODEL --json`` prints."""
        view = {**version_view(self.record, self.role), "deployed": self.deployed}
        return jsonsafe({**view, "gate": self.gate})

    @classmethod
    def of(cls, r: _Trained) -> TrainResult:
        v = r.version
        role = candidate_role(v, r.deployed)
        return cls(v.model, v.version, role, r.deployed, v.details.get("gate"), v)


@dataclass(frozen=True)
class FineTuneResult(TrainResult):
    """A patch version warm-started from the champion; ``champion_metrics``: the champion's
    metrics on the same validation rows."""

    champion_metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """What ``retrainer fine-tune MODEL --json`` prints."""
        view = {**version_view(self.record, self.role), "deployed": self.deployed}
        view["champion_metrics"] = self.champion_metrics
        return jsonsafe({**view, "gate": self.gate})

    @classmethod
    def of(cls, r: _FineTuned) -> FineTuneResult:  # type: ignore[override]
        v = r.version
        role = candidate_role(v, r.deployed)
        gate = v.details.get("gate")
        return cls(v.model, v.version, role, r.deployed, gate, v, dict(r.champion_metrics))


@dataclass(frozen=True)
class PredictResult:
    """Scored rows: ``frame`` is the input with ``prediction`` (and ``proba_<class>`` for a
    classifier, ``lower``/``upper`` for a regression with an interval); ``request_id`` names
    the logged request (``None`` with ``log=False``); ``out`` the file written, if any."""

    model: str
    version: str
    rows: int
    request_id: str | None
    out: str | None = None
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def logged(self) -> bool:
        return self.request_id is not None

    def to_dict(self) -> dict[str, Any]:
        """What ``retrainer predict MODEL FILE --out OUT --json`` prints."""
        return {
            "version": self.version,
            "rows": self.rows,
            "out": self.out,
            "request_id": self.request_id,
        }


@dataclass(frozen=True)
class DeployResult:
    """A role change (deploy or rollback), as recorded in the deployment log."""

    model: str
    action: str
    from_version: str | None
    to_version: str | None
    event: DeploymentEvent = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """What ``retrainer deploy|rollback MODEL --json`` prints."""
        return jsonsafe(event_view(self.event))

    @classmethod
    def of(cls, e: DeploymentEvent) -> DeployResult:
        return cls(e.model, e.action, e.from_version, e.to_version, e)


@dataclass(frozen=True)
class MaintainResult:
    """One maintenance turn: the policy's decision (``action``, every reason and number) and,
    when it trained, the new ``version`` and whether it was ``deployed``."""

    model: str
    action: str
    version: str | None
    deployed: bool
    decision: Decision = field(repr=False, compare=False)

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.decision.reasons

    def to_dict(self) -> dict[str, Any]:
        """What ``retrainer maintain MODEL --json`` prints."""
        view = {**decision_view(self.decision), "version": self.version}
        return jsonsafe({**view, "deployed": self.deployed})

    @classmethod
    def of(cls, r: _Maintained) -> MaintainResult:
        d = r.decision
        return cls(d.model, d.action, r.version, r.deployed, d)


@dataclass(frozen=True)
class ReportResult:
    """An HTML report written to ``out`` (``bytes`` long)."""

    model: str
    out: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """What ``retrainer report MODEL --json`` prints."""
        return {"model": self.model, "out": self.out, "bytes": self.bytes}
