"""Concept drift on the per-prediction error stream (river.drift ADWIN or Page-Hinkley),
debounced.

Errors are 0/1 (wrong prediction) for classifiers and absolute errors for regressors. The
monitor keeps a *reference* (the first ``reference_size`` errors it sees, or the holdout's
errors passed in) and the most recent ``window`` errors. Every check (one :meth:`update`
call with new errors) runs a fresh river detector over the reference followed by the recent
window; the check *fires* when the detector signals a change inside the recent window and
the recent error is above the reference error (a model that got better is not drift). The
status says ``drift=True`` only after ``persistence`` consecutive checks fired, and never
before the reference is full and ``min_samples`` recent errors are in.

Because each check is a pure function of (reference, window), the monitor's whole state is
JSON-safe (:meth:`ConceptDriftMonitor.to_dict`); no detector is pickled.

river is optional (the ``river`` extra) and imported only when a check runs. On the core
install every check is *skipped*: the errors still fill the reference and the window (so a
later install of river resumes from them), the status says ``skipped=True`` and why, and it
never reports drift.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> mon = ConceptDriftMonitor("adwin", min_samples=100, persistence=2, reference_size=500)
>>> status = mon.update((rng.random(1000) < 0.1).astype(float).tolist())
>>> status.drift, status.ready
(False, True)
>>> statuses = [mon.update((rng.random(200) < 0.35).astype(float).tolist()) for _ in range(3)]
>>> [s.fired for s in statuses], statuses[-1].drift
([True, True, True], True)
>>> ConceptDriftMonitor.from_dict(mon.to_dict()).status == mon.status
True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from ..core.errors import ConfigError, InputError
from ..core.spec_sections import Monitor

if TYPE_CHECKING:
    from river.base import DriftDetector

DetectorName = Literal["adwin", "page_hinkley"]
SNAPSHOT_FORMAT = 1
SKIPPED = (
    "concept drift check skipped: river is not installed (the core install has no "
    "concept-drift detector); install it with `pip install 'retrainer[river]'`"
)

# name -> (river.drift class name, defaults added to the user's params). Page-Hinkley watches
# increases only: a falling error rate is not a reason to retrain.
_DETECTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "adwin": ("ADWIN", {}),
    "page_hinkley": ("PageHinkley", {"mode": "up"}),
}


def river_drift() -> ModuleType | None:
    """``river.drift``, or None when river is not installed (the core install).

    >>> river_drift() is None or hasattr(river_drift(), "ADWIN")
    True
    """
    try:
        from river import drift
    except ImportError:
        return None
    return drift


@dataclass(frozen=True)
class ConceptDriftStatus:
    """The debounced verdict after one check, with the numbers behind it."""

    drift: bool
    fired: bool
    streak: int
    persistence: int
    detector: str
    ready: bool
    n_seen: int
    n_checks: int
    n_reference: int
    n_recent: int
    min_samples: int
    reference_error: float | None
    recent_error: float | None
    reason: str
    # True when the check could not run (river is not installed); drift is then always False
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _check_int(value: int, low: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(
            f"The {name!r} parameter of ConceptDriftMonitor must be an int >= {low}. "
            f"Got {value!r} instead."
        )


class ConceptDriftMonitor:
    """Debounced concept-drift detection on an error stream (see the module doc).

    ``params`` go to the river detector (e.g. ``{"delta": 0.002}`` for ADWIN or
    ``{"threshold": 20}`` for Page-Hinkley).
    """

    def __init__(
        self,
        detector: DetectorName = "adwin",
        *,
        min_samples: int = 100,
        persistence: int = 3,
        reference: Sequence[float] | None = None,
        reference_size: int = 500,
        window: int = 1000,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if detector not in _DETECTORS:
            raise ConfigError(
                f"The concept drift detector {detector!r} is unknown. Expected one of "
                f"{', '.join(_DETECTORS)}; set monitor.concept_detector in the spec."
            )
        for name, value, low in (
            ("min_samples", min_samples, 1),
            ("persistence", persistence, 1),
            ("reference_size", reference_size, 10),
            ("window", window, 10),
        ):
            _check_int(value, low, name)
        if min_samples > window:
            raise ConfigError(
                f"ConceptDriftMonitor's min_samples ({min_samples}) exceeds its window "
                f"({window}), so it could never be ready. Raise window or lower min_samples."
            )
        self.detector = detector
        self.min_samples = min_samples
        self.persistence = persistence
        self.reference_size = reference_size
        self.window = window
        self.params = dict(params or {})
        self._make()  # fail now on bad params, not at the first check (river installed)
        self.reference_: list[float] = []
        self.recent_: deque[float] = deque(maxlen=window)
        self.n_seen_ = 0
        self.n_checks_ = 0
        self.streak_ = 0
        self.status_: ConceptDriftStatus | None = None
        if reference is not None:
            self.reference_ = _validated(reference)[-reference_size:]

    @classmethod
    def from_spec(
        cls, monitor: Monitor, *, reference: Sequence[float] | None = None, **kwargs: Any
    ) -> ConceptDriftMonitor:
        """A monitor configured by the spec's ``monitor`` section.

        >>> ConceptDriftMonitor.from_spec(Monitor(concept_detector="page_hinkley")).persistence
        3
        """
        return cls(
            monitor.concept_detector,
            min_samples=monitor.min_samples,
            persistence=monitor.persistence,
            reference=reference,
            **kwargs,
        )

    def _make(self) -> DriftDetector | None:
        """A fresh river detector; None when river is not installed."""
        module = river_drift()
        if module is None:
            return None
        name, defaults = _DETECTORS[self.detector]
        try:
            detector: DriftDetector = getattr(module, name)(**{**defaults, **self.params})
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"The {self.detector} parameters {self.params!r} are invalid: {exc}. "
                f"See river.drift.{name} for the accepted ones."
            ) from exc
        return detector

    @property
    def status(self) -> ConceptDriftStatus:
        """The last check's status (a warming-up status before the first check)."""
        return self.status_ or self._status(False, ready=False)

    def update(self, errors: Sequence[float]) -> ConceptDriftStatus:
        """Add new per-prediction errors and run one check. An empty batch is not a check:
        it returns the previous status unchanged."""
        values = _validated(errors)
        if not values:
            return self.status
        self.n_seen_ += len(values)
        missing = self.reference_size - len(self.reference_)
        if missing > 0:
            self.reference_ += values[:missing]
            values = values[missing:]
        self.recent_.extend(values)
        ready = (
            len(self.reference_) >= self.reference_size and len(self.recent_) >= self.min_samples
        )
        if river_drift() is None:
            self.streak_ = 0
            self.status_ = self._status(False, ready=ready, skipped=True)
            return self.status_
        self.n_checks_ += 1
        fired = ready and self._fires()
        self.streak_ = self.streak_ + 1 if fired else 0
        self.status_ = self._status(fired, ready=ready)
        return self.status_

    def _fires(self) -> bool:
        ref, recent = _mean(self.reference_), _mean(self.recent_)
        if ref is None or recent is None or recent <= ref:
            return False
        det = self._make()
        if det is None:
            return False
        for x in self.reference_:
            det.update(x)
        detected = False
        for x in self.recent_:
            det.update(x)
            detected = detected or det.drift_detected
        return detected

    def _status(self, fired: bool, *, ready: bool, skipped: bool = False) -> ConceptDriftStatus:
        ref, recent = _mean(self.reference_), _mean(self.recent_)
        drift = self.streak_ >= self.persistence
        errors = f"recent error {recent:.3g} vs reference {ref:.3g}" if ready else ""
        if skipped:
            reason = SKIPPED
        elif not ready:
            reason = (
                f"warming up: {len(self.reference_)}/{self.reference_size} reference errors, "
                f"{len(self.recent_)}/{self.min_samples} recent errors"
            )
        elif drift:
            reason = (
                f"concept drift: {self.detector} fired in {self.streak_} consecutive checks "
                f"(persistence {self.persistence}); {errors}"
            )
        elif fired:
            reason = (
                f"{self.detector} fired in {self.streak_} of the {self.persistence} consecutive "
                f"checks needed; {errors}"
            )
        else:
            reason = f"no concept drift: {errors}"
        return ConceptDriftStatus(
            drift=drift,
            fired=fired,
            streak=self.streak_,
            persistence=self.persistence,
            detector=self.detector,
            ready=ready,
            n_seen=self.n_seen_,
            n_checks=self.n_checks_,
            n_reference=len(self.reference_),
            n_recent=len(self.recent_),
            min_samples=self.min_samples,
            reference_error=ref,
            recent_error=recent,
            reason=reason,
            skipped=skipped,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe snapshot: configuration, reference, recent window and counters."""
        return {
            "format": SNAPSHOT_FORMAT,
            "detector": self.detector,
            "params": self.params,
            "min_samples": self.min_samples,
            "persistence": self.persistence,
            "reference_size": self.reference_size,
            "window": self.window,
            "reference": list(self.reference_),
            "recent": list(self.recent_),
            "n_seen": self.n_seen_,
            "n_checks": self.n_checks_,
            "streak": self.streak_,
            "status": self.status_.to_dict() if self.status_ else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConceptDriftMonitor:
        """Resume from :meth:`to_dict`; the next check gives what it would have given."""
        if data.get("format") != SNAPSHOT_FORMAT:
            raise InputError(
                f"Concept drift snapshot format {data.get('format')!r} is not supported. "
                f"Expected {SNAPSHOT_FORMAT}; start a new monitor for this version."
            )
        try:
            mon = cls(
                data["detector"],
                min_samples=data["min_samples"],
                persistence=data["persistence"],
                reference=data["reference"],
                reference_size=data["reference_size"],
                window=data["window"],
                params=data["params"],
            )
            mon.recent_.extend(_validated(data["recent"]))
            mon.n_seen_, mon.n_checks_, mon.streak_ = (
                data["n_seen"],
                data["n_checks"],
                data["streak"],
            )
            status = data["status"]
        except KeyError as exc:
            raise InputError(
                f"Concept drift snapshot has no {exc.args[0]!r}. Expected the keys written by "
                "ConceptDriftMonitor.to_dict; start a new monitor for this version."
            ) from exc
        mon.status_ = ConceptDriftStatus(**status) if status else None
        return mon


def _validated(errors: Sequence[float]) -> list[float]:
    values = [float(e) for e in errors]
    bad = next((e for e in values if not math.isfinite(e) or e < 0), None)
    if bad is not None:
        raise InputError(
            f"Prediction errors must be finite and >= 0 (0/1 for classifiers, absolute errors "
            f"for regressors). Got {bad!r}; drop rows without an actual before monitoring."
        )
    return values
