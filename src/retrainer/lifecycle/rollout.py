"""Rollouts: how a challenger that passed the gate reaches traffic, and what each watch
window decides.

- direct: the challenger becomes champion at once.
- shadow: it scores every request (logged, never returned); after a watch window in which its
  live metric holds against the champion's, it is promoted.
- ab: ``fraction`` of entities (sticky by hash) see it; after each watch window an A/B test of
  the arms' live metric promotes it (significantly better), withdraws it (significantly
  worse, or no verdict after ``MAX_WATCHES`` windows), or keeps it running.
- canary: its fraction steps up through ``rollout.steps`` after each window in which its live
  metric holds; past the last step it is promoted.

"Holds" means its live primary metric is not more than ``auto_rollback_drop`` (relative)
worse than the champion's over the same window, with at least ``rollout.min_samples``
labelled predictions. After any promotion, the policy's live-regression rule rolls the new
champion back when it falls more than ``auto_rollback_drop`` below the previous champion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..core.clock import utcnow
from ..core.durations import parse_duration
from ..core.entities import Challenger, ModelVersion
from ..core.metrics import METRICS
from ..evaluation.arms import ArmComparison, compare_arms
from ..policy.state import LiveRegression
from .monitor import MonitorReport, monitor
from .registry_ops import deploy
from .workspace import Workspace

MAX_WATCHES = 4
STEP_ACTIONS = ("start_challenger", "canary_step")


@dataclass(frozen=True)
class RolloutStep:
    action: str  # promote | withdraw | canary_step | nothing
    reasons: tuple[str, ...]
    numbers: dict[str, Any]
    version: str | None = None


def start(ws: Workspace, model: str, version: ModelVersion, *, by: str, reason: str) -> str:
    """Put a gate-approved version on traffic per the spec's rollout mode; returns what
    happened."""
    spec = ws.model_spec(model)
    r = spec.rollout
    gate = version.details.get("gate")
    if r.mode == "direct" or ws.store.roles(model).champion is None:
        deploy(ws, model, version.version, reason=reason, triggered_by=by, gate=gate)
        return f"deployed {version.version}"
    fraction = {"shadow": 1.0, "ab": r.fraction, "canary": r.steps[0]}[r.mode]
    ws.store.set_challenger(model, version.version, r.mode, fraction, reason, by, gate=gate)
    return f"{version.version} started as {r.mode} challenger at {fraction:.0%}"


def significance(cmp: ArmComparison) -> str:
    """The arms' p-value in words, or why there is none (a metric without a test from the
    arms' aggregates, such as r2, has no p-value: never format None as a number).

    >>> from retrainer.evaluation.arms import compare_arms
    >>> significance(compare_arms("accuracy", 0.80, 5000, 0.83, 5000, significance=0.05))
    'p = 0.000112'
    >>> significance(compare_arms("r2", 0.80, 500, 0.83, 500, significance=0.05))
    'no significance test for r2 from live aggregates (only accuracy and mae have one)'
    """
    if cmp.p_value is None:
        return (
            f"no significance test for {cmp.metric} from live aggregates "
            "(only accuracy and mae have one)"
        )
    return f"p = {cmp.p_value:.3g}"


def step_started(ws: Workspace, model: str, ch: Challenger) -> datetime:
    """When the challenger's current step began (its start or its last canary step)."""
    for e in reversed(ws.store.events(model, limit=50)):
        if e.to_version == ch.version and e.action in STEP_ACTIONS:
            return e.created_at
    return ch.started_at


def arms(
    ws: Workspace, model: str, ch: Challenger, since: datetime, now: datetime
) -> tuple[MonitorReport, ArmComparison | None, int]:
    spec = ws.model_spec(model)
    report = monitor(ws, model, window=max(now - since, timedelta(hours=1)), now=now)
    arm = "shadow" if ch.mode == "shadow" else "challenger"
    metric = spec.primary_metric
    try:
        champ = report.version(str(ws.store.roles(model).champion), "champion")
        chal = report.version(ch.version, arm)
    except KeyError:
        return report, None, 0
    a, b = champ.metrics.get(metric), chal.metrics.get(metric)
    if a is None or b is None:
        return report, None, chal.labelled
    comparison = compare_arms(
        metric,
        a,
        champ.labelled,
        b,
        chal.labelled,
        significance=spec.gate.live_significance,
        champion_rmse=champ.metrics.get("rmse"),
        challenger_rmse=chal.metrics.get("rmse"),
    )
    return report, comparison, chal.labelled


def advance(
    ws: Workspace, model: str, *, by: str = "policy", now: datetime | None = None
) -> RolloutStep:
    """Judge the active challenger's current watch window and act on it."""
    spec = ws.model_spec(model)
    r = spec.rollout
    now = now or utcnow()
    roles = ws.store.roles(model)
    ch = roles.challenger
    if ch is None:
        return RolloutStep("nothing", ("no challenger on traffic",), {})
    since = step_started(ws, model, ch)
    watch = parse_duration(r.watch, what="rollout.watch")
    elapsed = now - since
    label = f"{ch.mode} challenger {ch.version} at {ch.fraction:.0%}"
    numbers: dict[str, Any] = {
        "challenger": ch.version,
        "mode": ch.mode,
        "fraction": ch.fraction,
        "step": ch.step,
        "elapsed_hours": elapsed.total_seconds() / 3600,
    }
    if elapsed < watch:
        return RolloutStep(
            "nothing", (f"{label}: watching ({_span(elapsed)} of {r.watch})",), numbers
        )
    _, cmp, n = arms(ws, model, ch, since, now)
    numbers["labelled"] = n
    too_long = elapsed >= watch * MAX_WATCHES
    if cmp is None or n < r.min_samples:
        if too_long:
            return _withdraw(
                ws,
                model,
                ch,
                by,
                f"{label}: only {n} labelled predictions after "
                f"{_span(elapsed)} (needs {r.min_samples}); withdrawn",
                numbers,
            )
        return RolloutStep(
            "nothing", (f"{label}: {n} labelled predictions, waiting for {r.min_samples}",), numbers
        )
    numbers["comparison"] = cmp.to_dict()
    metric = METRICS[cmp.metric]
    drop = metric.degradation(cmp.challenger, cmp.champion)
    numbers["drop"] = drop
    vs = f"live {cmp.metric} {cmp.challenger:.4f} vs champion {cmp.champion:.4f} over {n} labelled"
    if drop > r.auto_rollback_drop or cmp.verdict == "challenger_worse":
        return _withdraw(
            ws,
            model,
            ch,
            by,
            f"{label}: {vs} — worse by {drop:.1%} (limit {r.auto_rollback_drop:.0%}); withdrawn",
            numbers,
        )
    if ch.mode == "ab":
        if cmp.verdict == "challenger_better":
            return _promote(ws, model, ch, by, f"A/B: {vs}, {significance(cmp)}", numbers)
        if too_long:
            return _withdraw(
                ws,
                model,
                ch,
                by,
                f"A/B: {vs}, {significance(cmp)}: no significant "
                f"difference after {MAX_WATCHES} windows; champion kept",
                numbers,
            )
        return RolloutStep(
            "nothing", (f"A/B: {vs}: not significant yet ({significance(cmp)})",), numbers
        )
    if ch.mode == "canary":
        higher = [s for s in r.steps if s > ch.fraction + 1e-9]
        if higher and higher[0] < 1.0:
            ws.store.set_challenger(
                model,
                ch.version,
                "canary",
                higher[0],
                f"canary holds: {vs}",
                by,
                step=ch.step + 1,
                action="canary_step",
            )
            return RolloutStep(
                "canary_step", (f"{label}: {vs}; stepped to {higher[0]:.0%}",), numbers, ch.version
            )
    return _promote(ws, model, ch, by, f"{label}: {vs}; holds", numbers)


def _promote(
    ws: Workspace, model: str, ch: Challenger, by: str, why: str, numbers: dict[str, Any]
) -> RolloutStep:
    ws.store.move_champion(model, ch.version, "promote", why, by, gate=numbers.get("comparison"))
    ws.alert(model, "deploy", f"promoted {ch.version}", why)
    return RolloutStep("promote", (why,), numbers, ch.version)


def _withdraw(
    ws: Workspace, model: str, ch: Challenger, by: str, why: str, numbers: dict[str, Any]
) -> RolloutStep:
    ws.store.set_challenger(model, None, None, None, why, by, action="withdraw")
    ws.alert(model, "gate_rejected", f"withdrew challenger {ch.version}", why)
    return RolloutStep("withdraw", (why,), numbers, ch.version)


def live_regression(ws: Workspace, model: str, now: datetime) -> LiveRegression | None:
    """After a deploy or promotion (within ``MAX_WATCHES`` watch windows), the new champion's
    live metric against the previous champion's over an equally long window before it."""
    spec = ws.model_spec(model)
    watch = parse_duration(spec.rollout.watch, what="rollout.watch")
    events = [
        e for e in ws.store.events(model, limit=50) if e.action in ("deploy", "promote", "rollback")
    ]
    if not events:
        return None
    last = events[-1]
    if last.action == "rollback" or last.from_version is None:
        return None
    span = now - last.created_at
    if span < watch or span > watch * MAX_WATCHES:
        return None
    metric = spec.primary_metric
    try:
        after = monitor(ws, model, window=span, now=now).version(str(last.to_version), "champion")
        before = monitor(ws, model, window=span, now=last.created_at).version(
            last.from_version, "champion"
        )
    except KeyError:
        return None
    a, b = after.metrics.get(metric), before.metrics.get(metric)
    if a is None or b is None:
        return None
    return LiveRegression(
        metric, str(last.to_version), last.from_version, a, b, min(after.labelled, before.labelled)
    )


def _span(d: timedelta) -> str:
    hours = d.total_seconds() / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"
