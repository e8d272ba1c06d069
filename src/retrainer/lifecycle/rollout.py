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
from enum import StrEnum
from typing import Any

from ..core.clock import utcnow
from ..core.durations import parse_duration
from ..core.entities import Challenger, ModelVersion, Roles
from ..core.errors import ConflictError, InputError, NoChampion
from ..core.fleet import check_single
from ..core.metrics import METRICS
from ..core.spec import ModelSpec
from ..core.spec_sections import Rollout
from ..evaluation.arms import ArmComparison, compare_arms
from ..evaluation.gate import GateRecord, Verdict, stored_gate, verdict_text
from ..plumbing.workspace import Workspace
from ..policy.state import LiveRegression
from .deploy import deploy, verify_loadable
from .monitor import MonitorReport, monitor

MAX_WATCHES = 4
STEP_ACTIONS = ("start_challenger", "canary_step")


class RolloutAction(StrEnum):
    """What a rollout did; the value is the word stored (a decision's action for a watch
    window's step) or shown."""

    DEPLOYED = "deployed"  # the candidate became champion
    STARTED = "started"  # it went on traffic as a shadow, A/B or canary challenger
    HELD = "held"  # a deploy was asked for, but the gate or a running rollout kept it back
    REGISTERED = "registered"  # registered only: no deploy was asked for
    PROMOTE = "promote"  # a challenger's watch window: promoted to champion
    WITHDRAW = "withdraw"  # taken off traffic, the champion kept
    CANARY_STEP = "canary_step"  # the canary's share stepped up
    NOTHING = "nothing"  # still watching
    STOPPED = "stopped"  # taken off traffic by hand


@dataclass(frozen=True)
class RolloutOutcome:
    """What became of a version on its way to traffic: the action to match on and the
    words users read (``str()`` of it).

    >>> o = RolloutOutcome(RolloutAction.DEPLOYED, "gate pass vs 1.0.0: deployed 1.1.0", "1.1.0")
    >>> o.action is RolloutAction.DEPLOYED, str(o)
    (True, 'gate pass vs 1.0.0: deployed 1.1.0')
    """

    action: RolloutAction
    text: str
    version: str | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class RolloutStep:
    """One watch window's judgement of the challenger: promote, withdraw, canary_step or
    nothing (its ``action`` is stored as the decision's action)."""

    action: RolloutAction
    reasons: tuple[str, ...]
    numbers: dict[str, Any]
    version: str | None = None

    @property
    def outcome(self) -> RolloutOutcome:
        """The step in a few words: "promoted 1.1.0", "withdrew 1.1.0", "watching"."""
        said = {
            RolloutAction.PROMOTE: f"promoted {self.version}",
            RolloutAction.WITHDRAW: f"withdrew {self.version}",
            RolloutAction.CANARY_STEP: f"canary {self.version} stepped up",
        }.get(self.action, "watching")
        return RolloutOutcome(self.action, said, self.version)


@dataclass(frozen=True)
class Placement:
    """Where a newly trained candidate goes, decided before it is registered so that the
    version and its role change are written in one transaction. Every path that produces a
    candidate (``train``/``fine-tune --deploy``, ``maintain``, scheduled jobs, REST train)
    decides it with :func:`place`."""

    champion: bool = False
    challenger: tuple[str, float] | None = None  # (mode, fraction)
    forced: bool = False
    held: str | None = None  # why a deploy that was asked for did not happen


def first_fraction(rollout: Rollout, mode: str) -> float:
    """The traffic a challenger of ``mode`` starts with: all of it (shadow), the A/B share,
    or the canary's first step."""
    return {"shadow": 1.0, "ab": rollout.fraction, "canary": rollout.steps[0]}[mode]


def place(
    rollout: Rollout,
    roles: Roles,
    gate: GateRecord | None,
    *,
    deploy: bool,
    force: bool = False,
    require_pass: bool = False,
) -> Placement:
    """The gate's verdict and the spec's rollout applied to a candidate.

    The gate must pass (an "insufficient" verdict is enough unless ``require_pass``);
    ``force`` overrides it and deploys directly, recorded as forced. A passing candidate
    becomes champion with ``rollout.mode: direct`` (or when there is no champion), else it
    starts as a shadow, A/B or canary challenger, unless another challenger is on traffic.

    >>> from retrainer.core.entities import Roles
    >>> from retrainer.core.spec_sections import Rollout
    >>> ok = GateRecord.from_dict({"verdict": "pass", "champion_version": "1.0.0"})
    >>> place(Rollout(mode="ab", fraction=0.1), Roles("m", "1.0.0", None), ok, deploy=True)
    Placement(champion=False, challenger=('ab', 0.1), forced=False, held=None)
    >>> no = GateRecord.from_dict({"verdict": "reject", "champion_version": "1.0.0"})
    >>> place(Rollout(), Roles("m", "1.0.0", None), no, deploy=True).held
    'gate reject vs 1.0.0: kept the champion'
    """
    if not deploy:
        return Placement()
    verdict = None if gate is None else gate.verdict
    allowed = verdict in (None, Verdict.PASS) or (
        verdict is Verdict.INSUFFICIENT and not require_pass
    )
    if not allowed and not force:
        assert gate is not None
        return Placement(held=f"{verdict_text(gate)}: kept the champion")
    if not allowed or rollout.mode == "direct" or roles.champion is None:
        return Placement(champion=True, forced=not allowed)
    if roles.challenger is not None:
        ch = roles.challenger
        return Placement(
            held=(
                f"{ch.mode} challenger {ch.version} is on traffic: its rollout finishes first "
                f"(stop it with `retrainer rollout stop {roles.model}`)"
            )
        )
    return Placement(challenger=(rollout.mode, first_fraction(rollout, rollout.mode)))


def placement(version: ModelVersion, roles: Roles) -> RolloutOutcome:
    """What became of a registered candidate: deployed, started as a challenger, held back
    or only registered, with the words ``maintain`` and the scheduler record (the gate's
    verdict first).

    >>> from datetime import datetime
    >>> v = ModelVersion("m", "1.1.0", "1.0.0", "lightgbm", {}, datetime(2024, 1, 1), "manual",
    ...     "r", "full_retrain", None, None, 1, "", {}, {}, "u", "s", None, 1,
    ...     details={"gate": {"verdict": "pass", "champion_version": "1.0.0"}})
    >>> done = placement(v, Roles("m", "1.1.0", Challenger("1.1.0", "canary", 0.05, v.created_at)))
    >>> done.action is RolloutAction.STARTED, str(done)
    (True, 'gate pass vs 1.0.0: 1.1.0 started as canary challenger at 5%')
    """
    d, v = version.details, version.version
    verdict = verdict_text(stored_gate(d))
    if d.get("forced"):
        verdict += " (forced)"
    if d.get("deployed"):
        return RolloutOutcome(RolloutAction.DEPLOYED, f"{verdict}: deployed {v}", v)
    if roles.challenger is not None and roles.challenger.version == v:
        ch = roles.challenger
        said = f"{verdict}: {v} started as {ch.mode} challenger at {ch.fraction:.0%}"
        return RolloutOutcome(RolloutAction.STARTED, said, v)
    if d.get("held"):
        return RolloutOutcome(RolloutAction.HELD, f"{d['held']}; {v} registered", v)
    return RolloutOutcome(RolloutAction.REGISTERED, f"{verdict}: {v} registered, not deployed", v)


def outcome(version: ModelVersion, roles: Roles) -> str:
    """:func:`placement`'s words, for a message or a stored decision."""
    return placement(version, roles).text


def announce(ws: Workspace, spec: ModelSpec, version: ModelVersion, placed: Placement) -> None:
    """The alerts of a registered candidate: retrained, training_shrunk, and deploy,
    challenger_started or gate_rejected (each sent when ``alerts.events`` lists it)."""
    d, v, model = version.details, version.version, spec.name
    primary = d.get("primary_metric", spec.primary_metric)
    value = version.metrics.get(primary)
    gate = stored_gate(d)
    fields: dict[str, Any] = {"version": v, "kind": version.kind, "rows": version.n_rows}
    if value is not None:
        fields[f"holdout {primary}"] = f"{value:.4g}"
    if gate is not None:
        fields["gate"] = verdict_text(gate).removeprefix("gate ")
    ws.alert(model, "retrained", f"{version.kind} {v} registered", version.reason, **fields)
    shrunk = d.get("training_shrunk")
    if shrunk:
        ws.alert(
            model,
            "training_shrunk",
            f"training set of {v} shrank by {shrunk['fraction']:.0%}",
            f"{v} trained on {version.n_rows} rows; champion {shrunk['champion']} learnt from "
            f"{shrunk['champion_rows']} (alerts.training_shrink: {shrunk['limit']:.0%}). "
            "Check the data source and training.window_days.",
            **shrunk,
        )
    why = "" if gate is None else "; ".join(gate.reasons)
    if placed.champion:
        forced = " (forced past the gate)" if placed.forced else ""
        ws.alert(model, "deploy", f"deployed {v}{forced}", version.reason, **fields)
    elif placed.challenger is not None:
        mode, fraction = placed.challenger
        ws.alert(
            model,
            "challenger_started",
            f"{v} started as {mode} challenger at {fraction:.0%}",
            version.reason,
            **fields,
        )
    elif placed.held and gate is not None and not gate.passed:
        ws.alert(model, "gate_rejected", f"gate {gate.verdict}: {v} not deployed", why, **fields)


def training_shrunk(ws: Workspace, spec: ModelSpec, kind: str, rows: int) -> dict[str, Any] | None:
    """For a full retrain: the numbers when its window has markedly fewer rows than the
    champion learnt from (``alerts.training_shrink``), else None."""
    limit = spec.alerts.training_shrink
    champion = ws.store.roles(spec.name).champion
    if limit is None or champion is None or kind not in ("initial", "full_retrain"):
        return None
    versions = ws.store.list_versions(spec.name)
    champ = next(v for v in versions if v.version == champion)
    learnt = rows_learnt(champ, versions)
    if learnt <= 0 or rows >= (1 - limit) * learnt:
        return None
    return {
        "rows": rows,
        "champion": champion,
        "champion_rows": learnt,
        "fraction": round(1 - rows / learnt, 4),
        "limit": limit,
    }


def rows_learnt(champion: ModelVersion, versions: list[ModelVersion]) -> int:
    """The rows a version learnt from: a fine-tune's own rows plus those of the full training
    it continues (its ``n_rows`` counts only the rows it was tuned on). A full training that
    chose a shorter window (``training.choice``) counts the rows its window offered
    (``details["window_rows"]``): the data it had, whichever part it found best to learn."""
    by_name = {v.version: v for v in versions}
    rows, v = 0, champion
    while True:
        full = v.kind in ("initial", "full_retrain")
        rows += int(v.details.get("window_rows", v.n_rows)) if full else v.n_rows
        parent = by_name.get(v.parent) if v.parent else None
        if v.kind in ("initial", "full_retrain") or parent is None:
            return rows
        v = parent


def start(
    ws: Workspace,
    model: str,
    version: ModelVersion,
    *,
    by: str,
    reason: str,
    mode: str | None = None,
    fraction: float | None = None,
) -> RolloutOutcome:
    """Put an existing version on traffic: per the spec's rollout (``mode`` None), or as a
    ``mode`` challenger (shadow, ab, canary) at ``fraction`` (default: the spec's first
    fraction for that mode). Returns what happened (deployed or started); the event is in
    the history."""
    spec = check_single(ws.model_spec(model), "a rollout")
    r = spec.rollout
    roles = ws.store.roles(model)
    gate = stored_gate(version.details)
    chosen = mode or r.mode
    if chosen == "direct" or (roles.champion is None and mode is None):
        deploy(ws, model, version.version, reason=reason, triggered_by=by, gate=gate)
        said = f"deployed {version.version}"
        return RolloutOutcome(RolloutAction.DEPLOYED, said, version.version)
    _check_start(model, version.version, roles, chosen, fraction)
    verify_loadable(ws, version)
    share = fraction if fraction is not None else first_fraction(r, chosen)
    stored = None if gate is None else gate.to_dict()
    ws.store.set_challenger(model, version.version, chosen, share, reason, by, gate=stored)
    what = f"{version.version} started as {chosen} challenger at {share:.0%}"
    ws.alert(model, "challenger_started", what, reason, by=by)
    return RolloutOutcome(RolloutAction.STARTED, what, version.version)


def _check_start(model: str, version: str, roles: Roles, mode: str, fraction: float | None) -> None:
    if mode not in ("shadow", "ab", "canary"):
        raise InputError(
            f"Rollout mode {mode!r} is not known for a challenger. Expected one of: shadow, "
            "ab, canary (a direct switch is `retrainer deploy`).",
            mode=mode,
        )
    if fraction is not None and mode == "shadow":
        raise InputError(
            "--fraction does not apply to a shadow rollout: a shadow challenger scores every "
            "request (its answers are logged, never returned). Drop --fraction, or use --mode "
            "ab or canary."
        )
    if fraction is not None and not 0 < fraction < 1:
        raise InputError(
            f"--fraction must be a share of traffic in (0, 1), e.g. 0.1. Got {fraction!r} "
            "instead; a full switch is `retrainer deploy`.",
            fraction=fraction,
        )
    if roles.champion is None:
        raise NoChampion(
            f"Model {model!r} has no champion for a {mode} challenger to run beside. Deploy "
            f"one first: `retrainer deploy {model} {version}`."
        )
    if roles.champion == version:
        raise ConflictError(
            f"Model {model!r}: version {version} is the champion; a challenger must be another "
            "version. Pick one from `retrainer versions`."
        )
    ch = roles.challenger
    if ch is not None:
        raise ConflictError(
            f"Model {model!r} already has {ch.mode} challenger {ch.version} on traffic at "
            f"{ch.fraction:.0%}. Stop it first: `retrainer rollout stop {model}`."
        )


def stop(ws: Workspace, model: str, *, by: str, reason: str) -> RolloutOutcome:
    """Take the challenger off traffic (the champion keeps serving); recorded in history."""
    check_single(ws.model_spec(model), "a rollout")
    ch = ws.store.roles(model).challenger
    if ch is None:
        raise ConflictError(
            f"Model {model!r} has no challenger on traffic, so there is no rollout to stop. "
            f"`retrainer status {model}` shows who serves."
        )
    ws.store.set_challenger(model, None, None, None, reason, by, action="stop_challenger")
    said = f"stopped {ch.mode} challenger {ch.version} (was at {ch.fraction:.0%})"
    return RolloutOutcome(RolloutAction.STOPPED, said, ch.version)


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
    spec = check_single(ws.model_spec(model), "a rollout")
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
    spec = check_single(ws.model_spec(model), "a rollout")
    r = spec.rollout
    now = now or utcnow()
    roles = ws.store.roles(model)
    ch = roles.challenger
    if ch is None:
        return RolloutStep(RolloutAction.NOTHING, ("no challenger on traffic",), {})
    since = step_started(ws, model, ch)
    watch = parse_duration(r.watch, what="rollout.watch")
    elapsed = now - since
    label = f"{ch.mode} challenger {ch.version} at {ch.fraction:.0%}"
    numbers: dict[str, Any] = {
        "challenger": ch.version,
        "champion": roles.champion,  # what the watch window judges against (promote checks it)
        "mode": ch.mode,
        "fraction": ch.fraction,
        "step": ch.step,
        "elapsed_hours": elapsed.total_seconds() / 3600,
    }
    if elapsed < watch:
        return RolloutStep(
            RolloutAction.NOTHING, (f"{label}: watching ({_span(elapsed)} of {r.watch})",), numbers
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
            RolloutAction.NOTHING,
            (f"{label}: {n} labelled predictions, waiting for {r.min_samples}",),
            numbers,
        )
    numbers["comparison"] = cmp.to_dict()
    metric = METRICS[cmp.metric]
    drop = metric.degradation(cmp.challenger, cmp.champion)
    points = -metric.improvement(cmp.challenger, cmp.champion)
    numbers["drop"], numbers["drop_points"] = drop, points
    vs = f"live {cmp.metric} {cmp.challenger:.4f} vs champion {cmp.champion:.4f} over {n} labelled"
    by_points = r.auto_rollback_points is not None and points > r.auto_rollback_points
    if drop > r.auto_rollback_drop or by_points or cmp.verdict == "challenger_worse":
        limits = f"limit {r.auto_rollback_drop:.0%}" + (
            f" or {r.auto_rollback_points:g} points" if r.auto_rollback_points is not None else ""
        )
        return _withdraw(
            ws,
            model,
            ch,
            by,
            f"{label}: {vs} — worse by {drop:.1%}, {points:.4g} points ({limits}); withdrawn",
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
            RolloutAction.NOTHING,
            (f"A/B: {vs}: not significant yet ({significance(cmp)})",),
            numbers,
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
                RolloutAction.CANARY_STEP,
                (f"{label}: {vs}; stepped to {higher[0]:.0%}",),
                numbers,
                ch.version,
            )
    return _promote(ws, model, ch, by, f"{label}: {vs}; holds", numbers)


def _promote(
    ws: Workspace, model: str, ch: Challenger, by: str, why: str, numbers: dict[str, Any]
) -> RolloutStep:
    ws.store.move_champion(
        model,
        ch.version,
        "promote",
        why,
        by,
        gate=numbers.get("comparison"),
        expect_champion=numbers.get("champion", False),
    )
    ws.alert(model, "deploy", f"promoted {ch.version}", why)
    return RolloutStep(RolloutAction.PROMOTE, (why,), numbers, ch.version)


def _withdraw(
    ws: Workspace, model: str, ch: Challenger, by: str, why: str, numbers: dict[str, Any]
) -> RolloutStep:
    ws.store.set_challenger(model, None, None, None, why, by, action="withdraw")
    ws.alert(model, "gate_rejected", f"withdrew challenger {ch.version}", why)
    return RolloutStep(RolloutAction.WITHDRAW, (why,), numbers, ch.version)


def live_regression(ws: Workspace, model: str, now: datetime) -> LiveRegression | None:
    """After a deploy or promotion (within ``MAX_WATCHES`` watch windows), the new champion's
    live metric against the previous champion's over an equally long window before it."""
    spec = check_single(ws.model_spec(model), "a rollout")
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
