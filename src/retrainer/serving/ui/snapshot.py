"""What the dashboard shows, read from the store through the lifecycle functions, and the last
known state kept in memory for when the store is down.

Every read is bounded: the roles, the last ``RECENT`` decisions, the monitor's hourly buckets
(through :func:`~retrainer.lifecycle.monitor.monitor`, cached ``LIVE_TTL`` seconds per model so
a page polled by many browsers folds new predictions at most that often), and for the model
page the report's :func:`~retrainer.report.data.collect` (cached until the model's roles or
decisions change, at most ``PAGE_TTL`` seconds). A fleet is one overview row and a page of
its own, read in a few queries whatever its number of members (:mod:`.fleet`); a member's
page is the model page.

>>> badge_level(0.2, 0.08, 0.15), badge_level(0.1, 0.08, 0.15), badge_level(-0.01, 0.08, 0.15)
('bad', 'warn', 'ok')
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from ...core.clock import utcnow
from ...core.cron import next_fire
from ...core.entities import Decision, Roles
from ...core.errors import RetrainerError, StoreBusy, StoreUnavailable
from ...core.fleet import split_member
from ...lifecycle import deploy as deploy_ops
from ...lifecycle.abtest import ab_report
from ...lifecycle.drift_check import last_drift
from ...lifecycle.monitor import MonitorReport, monitor
from ...report.data import ReportData, collect
from ...scheduler import build_jobs
from .badges import Badge, badge_level
from .fleet import FleetRow, fleet_page, fleet_row

if TYPE_CHECKING:
    from ..app import ServerState

RECENT = 20  # decisions read for the overview's badges
PAGE_DECISIONS = 200  # decisions the model page draws
LIVE_TTL = 15.0
PAGE_TTL = 60.0
STORE_DOWN = (StoreUnavailable, StoreBusy, SQLAlchemyError, OSError)


@dataclass(frozen=True)
class ModelRow:
    """One model on the overview."""

    model: str
    roles: Roles
    served: dict[str, Any]
    health: Badge
    drift: Badge
    last_decision: Decision | None
    next_job: str
    rollout: str


@dataclass(frozen=True)
class ModelPage:
    """Everything the model page draws (``data``: the report's data, shared with the charts)."""

    row: ModelRow
    data: ReportData
    ab: dict[str, Any] | None
    steps: list[float]
    min_samples: int
    rollback_to: str | None = None  # the previous champion, when there is one


@dataclass
class Known:
    """The last state read from the store, with when (monotonic and UTC)."""

    value: Any
    at: datetime
    mono: float = field(default_factory=time.monotonic)
    key: Any = None


@dataclass(frozen=True)
class Read:
    """A read of the store: the value (the last known one when the store is down, or None),
    whether the store answered, the error in words and when the value was read."""

    value: Any
    store_up: bool
    error: str = ""
    at: datetime | None = None


class Snapshots:
    """The dashboard's reads with their caches and the last known state (one per server)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._live: dict[str, Known] = {}
        self._pages: dict[str, Known] = {}
        self._overview: Known | None = None
        self._fleets: dict[str, Known] = {}

    # -- the overview ---------------------------------------------------------------------
    def overview(self) -> Read:
        """A row per plain model (its monitor, decisions and drift read) and one per fleet
        (two queries whatever its number of members), sorted by name."""
        reg = self.state.registry
        plain = [m for m in reg.models if reg.fleet_of(m) is None]
        try:
            rows: list[ModelRow | FleetRow] = [self._row(m) for m in plain]
            rows += [self._fleet_row(f) for f in reg.fleets]
            rows.sort(key=lambda r: r.model if isinstance(r, ModelRow) else r.fleet)
        except STORE_DOWN as exc:
            known = self._overview
            return _last_known(known, exc)
        with self._lock:
            self._overview = Known(rows, utcnow())
        return Read(rows, True, at=self._overview.at)

    def _row(self, name: str) -> ModelRow:
        ws = self.state.ws
        spec = ws.model_spec(name)
        roles = ws.store.roles(name)
        recent = ws.store.decisions(name, RECENT)
        return ModelRow(
            name,
            roles,
            self._served(name),
            self._health(name, roles, recent),
            _drift_badge(last_drift(ws, name), recent),
            recent[-1] if recent else None,
            self._next_job(name),
            _rollout_text(roles, spec.rollout.steps),
        )

    def _fleet_row(self, fleet: str) -> FleetRow:
        reg = self.state.registry
        spec = reg.fleets[fleet]

        def loaded(m: str) -> bool:
            s = reg.served.get(m)
            return s is not None and s.champion is not None

        def rollout(roles: Roles) -> str:
            return _rollout_text(roles, spec.rollout.steps)

        return fleet_row(self.state.ws, spec, loaded, rollout, self._next_job(fleet))

    def fleet(self, fleet: str) -> Read:
        """Fleet ``fleet``'s page: every member from the store, or the last known state."""
        reg = self.state.registry
        with self._lock:
            known = self._fleets.get(fleet)
        try:
            page = fleet_page(self.state.ws, reg.fleets[fleet], self._ready)
        except STORE_DOWN as exc:
            return _last_known(known, exc)
        with self._lock:
            self._fleets[fleet] = Known(page, utcnow())
        return Read(page, True, at=utcnow())

    def _ready(self, name: str) -> str:
        reg = self.state.registry
        return reg.ready_of(name) if name in reg.served else "not listed by this server yet"

    def _served(self, name: str) -> dict[str, Any]:
        s = self.state.registry.served[name]
        return {
            "champion": s.champion.version if s.champion else None,
            "challenger": s.challenger.version if s.challenger else None,
            "ready": self.state.registry.ready()[name],
        }

    def live(self, name: str) -> MonitorReport | None:
        """The monitor's report (as ``/v1/models/{name}/status`` computes it), cached."""
        with self._lock:
            known = self._live.get(name)
        if known is not None and time.monotonic() - known.mono < LIVE_TTL:
            report: MonitorReport | None = known.value
            return report
        try:
            report = monitor(self.state.ws, name)
        except STORE_DOWN:
            raise
        except RetrainerError:
            report = None
        with self._lock:
            self._live[name] = Known(report, utcnow())
        return report

    def _health(self, name: str, roles: Roles, recent: list[Decision]) -> Badge:
        """Live metric vs the champion's baseline: the monitor's window when it holds enough
        labelled predictions, else the numbers of the last decision that measured it."""
        spec = self.state.ws.model_spec(name)
        moderate, critical = spec.policy.degradation, spec.policy.critical_degradation
        if roles.champion is None:
            return Badge("none", "no champion")
        report = self.live(name)
        if report is not None:
            try:
                v = report.version(roles.champion)
            except KeyError:
                v = None
            enough = v is not None and v.labelled >= spec.monitor.min_samples
            if v is not None and enough and v.degradation is not None:
                metric = report.primary_metric
                live, base = v.metrics.get(metric), v.baseline.get(metric)
                return Badge(
                    badge_level(v.degradation, moderate, critical),
                    f"{metric} {_fmt(live)} vs {_fmt(base)}",
                    f"{v.labelled} labelled predictions over {report.window}; "
                    f"{v.degradation:+.1%} vs the holdout baseline (limits {moderate:.0%}, "
                    f"{critical:.0%})",
                )
        for d in reversed(recent):
            n = d.numbers
            if n.get("live_metric") is None or n.get("degradation") is None:
                continue
            level = badge_level(float(n["degradation"]), moderate, critical)
            counted = n.get("degradation_counted", True)
            return Badge(
                level if counted else "none",
                f"{n.get('metric', 'metric')} {_fmt(n['live_metric'])} vs "
                f"{_fmt(n.get('baseline_metric'))}",
                f"from decision {d.id} at {d.taken_at:%Y-%m-%d %H:%M}: {n.get('live_samples')} "
                f"labelled, {float(n['degradation']):+.1%} vs the baseline"
                + ("" if counted else " (too few samples to count)"),
            )
        return Badge("none", "no live metric yet", "no labelled predictions in the window")

    def _next_job(self, name: str) -> str:
        """The next scheduled job of ``name`` (a member's: its fleet's, which runs it)."""
        now = utcnow()
        upcoming = []
        parts = split_member(name)
        owner = parts[0] if parts and parts[0] in self.state.registry.fleets else name
        for job in build_jobs(self.state.ws.spec):
            if job.model == owner:
                at = next_fire(job.trigger(), now)
                if at is not None:
                    upcoming.append((at, job.kind))
        if not upcoming:
            return "none scheduled"
        at, kind = min(upcoming)
        return f"{kind} at {at:%Y-%m-%d %H:%M} UTC"

    # -- the model page -------------------------------------------------------------------
    def page(self, name: str) -> Read:
        ws = self.state.ws
        with self._lock:
            known = self._pages.get(name)
        try:
            row = self._row(name)
            last = row.last_decision.id if row.last_decision else None
            key = (ws.store.roles_revision(name), last)
            fresh = known is not None and known.key == key
            if fresh and known is not None and time.monotonic() - known.mono < PAGE_TTL:
                page = ModelPage(row, *known.value[1:])
            else:
                spec = ws.model_spec(name)
                data = collect(ws, name, max_decisions=PAGE_DECISIONS)
                ab = None
                if row.roles.challenger is not None and row.roles.champion is not None:
                    try:
                        ab = ab_report(ws, name).to_dict()
                    except STORE_DOWN:
                        raise
                    except RetrainerError as exc:
                        ab = {"verdict": exc.message}
                try:
                    back: str | None = deploy_ops.rollback_target(ws, name)
                except STORE_DOWN:
                    raise
                except RetrainerError:
                    back = None
                page = ModelPage(row, data, ab, spec.rollout.steps, spec.rollout.min_samples, back)
        except STORE_DOWN as exc:
            return _last_known(known, exc)
        with self._lock:
            self._pages[name] = Known(
                (page.row, page.data, page.ab, page.steps, page.min_samples, page.rollback_to),
                utcnow(),
                key=key,
            )
        return Read(page, True, at=utcnow())


def _last_known(known: Known | None, exc: BaseException) -> Read:
    if known is None:
        return Read(None, False, _words(exc))
    return Read(known.value, False, _words(exc), known.at)


def as_page(value: Any) -> ModelPage | None:
    """A last-known page tuple (as cached) as a :class:`ModelPage`."""
    if value is None or isinstance(value, ModelPage):
        return value
    return ModelPage(*value)


def _drift_badge(last: tuple[str, dict[str, Any]] | None, recent: list[Decision]) -> Badge:
    """The latest drift check (``lifecycle.drift_check.last_drift``: the share of drifted
    features, the highest PSI in the tooltip); before the first stored one, the last decision
    whose policy measured data drift."""
    if last is not None:
        version, s = last
        share = float(s.get("share") or 0.0)
        psi = sorted((s.get("psi") or {}).items(), key=lambda kv: -float(kv[1]))[:3]
        top = ", ".join(f"{f} {float(x):.3g}" for f, x in psi) or "none measured"
        at = str(s.get("at", "?"))[:16].replace("T", " ")
        if not psi:
            return Badge("none", "too few rows", f"check of {at}: {s.get('rows', 0)} rows")
        return Badge(
            "bad" if s.get("critical") else "warn" if s.get("drift") else "ok",
            f"{share:.0%} drifted",
            f"check of {at} against {version} on {s.get('rows', '?')} rows; highest PSI: {top}",
        )
    for d in reversed(recent):
        n = d.numbers
        if "data_drift" not in n:
            continue
        share = float(n.get("drift_share") or 0.0)
        features = ", ".join(n.get("drifted_features") or []) or "none"
        level = "bad" if n.get("critical_drift") else "warn" if n.get("data_drift") else "ok"
        return Badge(
            level,
            f"{share:.0%} drifted",
            f"check of {d.taken_at:%Y-%m-%d %H:%M} (decision {d.id}); drifted: {features}",
        )
    return Badge("none", "no drift check yet", "retrainer drift or maintain records one")


def _rollout_text(roles: Roles, steps: list[float]) -> str:
    ch = roles.challenger
    if ch is None:
        return "no challenger"
    text = f"{ch.mode} {ch.version} at {ch.fraction:.0%}"
    if ch.mode == "canary" and steps:
        text += f" (step {ch.step + 1} of {len(steps)})"
    return text


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{float(x):.4g}"


def _words(exc: BaseException) -> str:
    if isinstance(exc, RetrainerError):
        return exc.message
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc) else ''}"
