"""Domain entities: frozen dataclasses with no I/O. Store rows convert to these and never
leave the store.

>>> v = SemVer.parse("1.2.3")
>>> str(v.bump("minor")), str(v.bump("patch")), str(v.bump("major"))
('1.3.0', '1.2.4', '2.0.0')
>>> SemVer.parse("1.10.0") > SemVer.parse("1.9.9")
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .errors import InputError

Bump = Literal["major", "minor", "patch"]
CreatedBy = Literal["manual", "api", "schedule", "drift", "degradation", "policy", "demo"]
VersionStatus = Literal["ready", "deleted"]
RolloutMode = Literal["direct", "shadow", "ab", "canary"]
Action = Literal[
    "nothing",
    "fine_tune",
    "full_retrain",
    "rollback",
    "incremental_update",
    "promote",
    "withdraw",
    "canary_step",
]

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True, order=True)
class SemVer:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer:
        m = _SEMVER.match(text.strip())
        if not m:
            raise InputError(
                f"Version {text!r} is not a semantic version. Expected MAJOR.MINOR.PATCH, "
                "e.g. 1.2.0."
            )
        return cls(int(m[1]), int(m[2]), int(m[3]))

    def bump(self, kind: Bump) -> SemVer:
        if kind == "major":
            return SemVer(self.major + 1, 0, 0)
        if kind == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        return SemVer(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class ModelVersion:
    """One registered, immutable model version."""

    model: str
    version: str
    parent: str | None
    family: str
    params: dict[str, Any]
    created_at: datetime
    created_by: str
    reason: str
    kind: str  # "initial" | "full_retrain" | "fine_tune" | "incremental_update"
    train_start: datetime | None
    train_end: datetime | None
    n_rows: int
    fingerprint: str
    feature_schema: dict[str, Any]
    metrics: dict[str, float]
    artifact_uri: str
    sha256: str
    hmac: str | None
    size_bytes: int
    status: VersionStatus = "ready"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def semver(self) -> SemVer:
        return SemVer.parse(self.version)

    @property
    def baseline(self) -> dict[str, float]:
        """What the monitor and the policy judge this version's live metrics against: its
        holdout metrics, except a metric whose baseline it kept from the champion it replaced
        (``details["kept_baseline"]``: it did not recover from a critical degradation, see
        :func:`retrainer.policy.decide.kept_baseline`).

        >>> v = ModelVersion("m", "1.1.0", "1.0.0", "lightgbm", {}, datetime(2024, 1, 1),
        ...     "policy", "", "full_retrain", None, None, 10, "", {}, {"mae": 3.5}, "", "",
        ...     None, 0, details={"kept_baseline": {"metric": "mae", "value": 0.9}})
        >>> v.baseline
        {'mae': 0.9}
        """
        kept = self._kept_baseline
        if kept is None:
            return dict(self.metrics)
        return {**self.metrics, str(kept["metric"]): float(kept["value"])}

    def baseline_from(self, metric: str) -> str:
        """The version whose holdout measured this version's baseline of ``metric``: its own,
        or the one it kept it from (:attr:`baseline`).

        >>> v = ModelVersion("m", "1.1.0", "1.0.0", "lightgbm", {}, datetime(2024, 1, 1),
        ...     "policy", "", "full_retrain", None, None, 10, "", {}, {"mae": 3.5}, "", "",
        ...     None, 0, details={"kept_baseline": {"metric": "mae", "value": 0.9,
        ...                                         "from": "1.0.0"}})
        >>> v.baseline_from("mae"), v.baseline_from("rmse")
        ('1.0.0', '1.1.0')
        """
        kept = self._kept_baseline
        if kept is None or kept["metric"] != metric:
            return self.version
        return str(kept.get("from", self.version))

    @property
    def _kept_baseline(self) -> dict[str, Any] | None:
        kept = self.details.get("kept_baseline")
        return kept if isinstance(kept, dict) and "metric" in kept else None


@dataclass(frozen=True)
class Challenger:
    version: str
    mode: RolloutMode
    fraction: float
    started_at: datetime
    step: int = 0


@dataclass(frozen=True)
class Roles:
    """Who serves: exactly one champion (once trained) and at most one challenger."""

    model: str
    champion: str | None
    challenger: Challenger | None
    champion_since: datetime | None = None


@dataclass(frozen=True)
class ModelOverview:
    """One line of ``status``: who serves, how many versions, how many training rows."""

    roles: Roles
    versions: int
    training_rows: int


@dataclass(frozen=True)
class DeploymentEvent:
    """An append-only audit record of a role change."""

    id: int
    model: str
    action: str  # deploy | rollback | promote | start_challenger | stop_challenger | archive ...
    from_version: str | None
    to_version: str | None
    reason: str
    triggered_by: str
    created_at: datetime
    forced: bool = False
    gate: dict[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    """What the policy chose, every reason (with its numbers) and the numbers themselves."""

    model: str
    action: Action
    reasons: tuple[str, ...]
    numbers: dict[str, Any]
    taken_at: datetime
    dry_run: bool = False
    outcome: str | None = None
    id: int | None = None
