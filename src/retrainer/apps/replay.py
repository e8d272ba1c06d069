"""Replay a time-ordered frame through the whole loop on a simulated clock.

The first ``initial_days`` of rows train the first champion. Then, one maintenance period at a
time (``maintain_every_days``), the period's rows are served through the rollout routing
(:func:`retrainer.core.routing.route`, so shadow, A/B and canary arms are exercised as the
roles say) and logged; their actuals arrive ``delay_days`` after the prediction through
:func:`~retrainer.lifecycle.feedback.record_feedback` (which also adds them as training rows);
and at the end of the period :func:`~retrainer.lifecycle.maintain.maintain` runs the monitor,
the policy and its action. Every timestamp — versions, events, predictions, decisions — is on
the replayed time.

Roles only change inside ``maintain``, so routing one period's rows with the roles that hold
at its start is exactly routing them day by day; it costs one prediction call per version and
one store write per period instead of one per row.

>>> import pandas as pd
>>> cfg = ReplayConfig(initial_days=365, maintain_every_days=7)
>>> cfg.delay_days, cfg.maintain_every_days
(1.0, 7)
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..core.clock import SimClock, use_clock
from ..core.entities import Roles
from ..core.errors import InputError, RetrainerError
from ..core.fleet import check_single
from ..core.ids import time_ordered_id
from ..core.routing import route
from ..core.spec import ModelSpec
from ..evaluation.gate_types import Verdict, stored_gate
from ..lifecycle.feedback import label_key, record_feedback
from ..lifecycle.ingest import ingest_frame
from ..lifecycle.maintain import maintain
from ..lifecycle.predict import input_dicts, inputs_text, predict_frame, record_outputs
from ..lifecycle.predictor import Predictor, load_predictor
from ..lifecycle.time_inputs import fill_inputs
from ..lifecycle.train import train
from ..plumbing.workspace import Workspace
from ..store.predlog import PredictionRecord, record_rows, request_record


@dataclass(frozen=True)
class ReplayConfig:
    """How to replay: the initial window, the actuals' delay, the maintenance cadence."""

    initial_days: int = 3650
    delay_days: float = 1.0
    maintain_every_days: int = 7
    days: int | None = None  # replay at most this many days after the initial window
    triggered_by: str = "policy"

    def __post_init__(self) -> None:
        for name in ("initial_days", "maintain_every_days"):
            if getattr(self, name) < 1:
                raise InputError(
                    f"ReplayConfig.{name} must be at least 1 day. Got {getattr(self, name)}."
                )
        if self.delay_days < 0:
            raise InputError(f"ReplayConfig.delay_days must be >= 0. Got {self.delay_days}.")


@dataclass(frozen=True)
class TimelineEntry:
    """One maintenance turn: what the policy chose, why, and what came of it."""

    at: datetime
    action: str
    reason: str
    outcome: str
    champion: str | None  # after the turn
    version: str | None  # the version the turn registered (or rolled back to)
    deployed: bool
    live_metric: float | None
    metric: str | None
    gate: Verdict | None  # the registered version's gate verdict
    events: tuple[str, ...] = ()  # deployment events of the turn, e.g. "deploy 1.0.0 → 1.1.0"
    challenger: str | None = None  # "1.2.0 canary 25%" after the turn

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        out["events"] = list(self.events)
        out["gate"] = None if self.gate is None else self.gate.value
        return out


@dataclass(frozen=True)
class ReplaySummary:
    model: str
    start: datetime
    end: datetime
    served: int
    metric: str
    value: float  # of the served predictions (accuracy, or MAE for a regression)
    by_arm: dict[str, int]
    trainings: int
    full_retrains: int
    fine_tunes: int
    training_cpu_seconds: float
    decisions: dict[str, int]
    deployments: int
    rollbacks: int
    gate_rejections: int
    champion: str | None
    wall_seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        return out


@dataclass(frozen=True)
class ReplayResult:
    summary: ReplaySummary
    timeline: list[TimelineEntry]
    correct: np.ndarray = field(repr=False)  # per served row, in time order (or abs. error)
    served_times: np.ndarray = field(repr=False)


OnTurn = Callable[[TimelineEntry], None]


class _Server:
    """Routes and scores rows with Predictors cached per version; reloads the roles only when
    the store's roles revision moves."""

    def __init__(self, ws: Workspace, model: str) -> None:
        self.ws, self.model = ws, model
        self.revision = -1
        self.roles = Roles(model, None, None)
        self.cache: dict[str, Predictor] = {}

    def refresh(self) -> Roles:
        rev = self.ws.store.roles_revision(self.model)
        if rev != self.revision:
            self.revision, self.roles = rev, self.ws.store.roles(self.model)
            live = {self.roles.champion}
            if self.roles.challenger is not None:
                live.add(self.roles.challenger.version)
            self.cache = {v: p for v, p in self.cache.items() if v in live}
        return self.roles

    def predictor(self, version: str) -> Predictor:
        if version not in self.cache:
            self.cache[version] = load_predictor(
                self.ws, self.ws.store.get_version(self.model, version)
            )
        return self.cache[version]

    def serve(
        self,
        spec: ModelSpec,
        rows: pd.DataFrame,
        pending: pd.DataFrame | None = None,
        delay: timedelta | None = None,
    ) -> tuple[list[PredictionRecord], pd.Series]:
        """Prediction records for ``rows`` (served arms and shadows) and the served output per
        row (index aligned with ``rows``). ``pending`` (``event_time``, ``target``, the
        features): the rows not stored yet whose actual arrives ``delay`` after their time,
        which a version that learnt time inputs sees once arrived
        (:mod:`~retrainer.lifecycle.time_inputs`).

        Each version scores all the rows routed to it (served or shadowed) in one call; the
        records are then cut per distinct time, one request per time, as a client would have
        sent them."""
        roles = self.refresh()
        n = len(rows)
        ids = rows[spec.id_column].astype(str).tolist()
        routes = [route(roles, eid) for eid in ids]
        scoring: dict[str, list[int]] = {}
        for i, r in enumerate(routes):
            scoring.setdefault(r.version, []).append(i)
            if r.shadow is not None:
                scoring.setdefault(r.shadow, []).append(i)
        outputs: dict[str, list[Any]] = {}
        probas: dict[str, list[float | None] | None] = {}
        raw: dict[str, list[Any]] = {}
        for version, idx in scoring.items():
            predictor = self.predictor(version)
            scored = fill_inputs(self.ws, spec, predictor.model, rows.iloc[idx], pending, delay)
            result = predict_frame(predictor, scored)
            outs, prob = record_outputs(self.predictor(version), result)
            outputs[version], raw[version] = [None] * n, [None] * n
            probas[version] = None if prob is None else [None] * n
            for k, i in enumerate(idx):
                outputs[version][i] = outs[k]
                raw[version][i] = result["prediction"].iat[k]
                if prob is not None:
                    probas[version][i] = prob[k]  # type: ignore[index]
        served = pd.Series(
            [raw[r.version][i] for i, r in enumerate(routes)], index=rows.index, dtype=object
        )
        dicts = input_dicts(spec, rows)
        records: list[PredictionRecord] = []
        # One request per distinct time: its rows stored once, each arm's record names them.
        by_time = pd.Series(np.arange(n)).groupby(rows[spec.time_column].to_numpy())
        for at, positions in by_time.indices.items():
            request = positions.tolist()
            groups: dict[tuple[str, str], list[int]] = {}
            for pos, i in enumerate(request):
                r = routes[i]
                groups.setdefault((r.version, r.arm), []).append(pos)
                if r.shadow is not None:
                    groups.setdefault((r.shadow, "shadow"), []).append(pos)
            request_id, key = time_ordered_id(), time_ordered_id()
            text: str | None = inputs_text(spec, [dicts[i] for i in request])
            created = pd.Timestamp(at).to_pydatetime()
            for (version, arm), where in groups.items():
                idx = [request[pos] for pos in where]
                prob = probas[version]
                records.append(
                    request_record(
                        self.model,
                        request_id,
                        version,
                        arm,
                        created,
                        text,
                        [ids[i] for i in idx],
                        [outputs[version][i] for i in idx],
                        None if prob is None else [prob[i] for i in idx],
                        input_key=key,
                        input_rows=where,
                    )
                )
                text = None  # stored with the first record
        return records, served


def replay(
    ws: Workspace,
    model: str,
    frame: pd.DataFrame,
    config: ReplayConfig | None = None,
    *,
    on_turn: OnTurn | None = None,
) -> ReplayResult:
    """Replay ``frame`` (the model's id, time, target and feature columns) through the loop
    into an empty model of ``ws``; returns the timeline and a summary."""
    cfg = config or ReplayConfig()
    spec = check_single(ws.model_spec(model), "replay")
    started = time.perf_counter()
    frame = frame.sort_values(spec.time_column, kind="stable").reset_index(drop=True)
    times = pd.to_datetime(frame[spec.time_column])
    frame[spec.time_column] = times
    first = times.iloc[0].to_pydatetime()
    start = first + timedelta(days=cfg.initial_days)
    last = times.iloc[-1].to_pydatetime()
    end = last if cfg.days is None else min(last, start + timedelta(days=cfg.days))
    if start > end:
        raise InputError(
            f"The frame spans {first:%Y-%m-%d} to {last:%Y-%m-%d}, shorter than the initial "
            f"window of {cfg.initial_days} days. Lower ReplayConfig.initial_days."
        )
    if ws.store.list_versions(model):
        raise InputError(
            f"Model {model!r} already has versions; a replay starts from an empty model. "
            "Use a fresh workspace (or store)."
        )
    clock = SimClock(start)
    server = _Server(ws, model)
    timeline: list[TimelineEntry] = []
    truth: list[Any] = []
    said: list[Any] = []
    served_at: list[Any] = []
    arms: Counter[str] = Counter()
    seen_event = 0
    delay = timedelta(days=cfg.delay_days)
    step = timedelta(days=cfg.maintain_every_days)
    with use_clock(clock):
        ingest_frame(ws, model, frame[times < start], where="replay: initial window")
        train(ws, model, deploy=True, created_by=cfg.triggered_by, reason="initial model")
        seen_event = _last_event_id(ws, model)
        fed = int(np.searchsorted(times.to_numpy(), np.datetime64(start), side="left"))
        at = start
        while at <= end:
            nxt = at + step
            lo = int(np.searchsorted(times.to_numpy(), np.datetime64(at), side="left"))
            hi = int(
                np.searchsorted(
                    times.to_numpy(),
                    np.datetime64(min(nxt, end + timedelta(seconds=1))),
                    side="left",
                )
            )
            if hi > lo:
                rows = frame.iloc[lo:hi]
                clock.set(at)
                cols = [spec.time_column, spec.target, *spec.active_features.numeric]
                pending = frame.iloc[fed:hi][cols]
                pending.columns = pd.Index(["event_time", "target", *cols[2:]])
                records, served = server.serve(spec, rows, pending, delay)
                ws.store.log_predictions(records)
                for rec in records:
                    arms[rec["arm"]] += record_rows(rec)
                truth += rows[spec.target].tolist()
                said += served.tolist()
                served_at += rows[spec.time_column].tolist()
            clock.set(nxt)
            ready = int(np.searchsorted(times.to_numpy(), np.datetime64(nxt - delay), side="right"))
            ready = min(ready, hi)
            if ready > fed:
                cols = [spec.id_column, spec.target, spec.time_column]
                record_feedback(ws, model, frame.iloc[fed:ready][cols], where="replay feedback")
                fed = ready
            result = maintain(ws, model, now=nxt, triggered_by=cfg.triggered_by)
            entry, seen_event = _entry(ws, model, result, seen_event)
            timeline.append(entry)
            if on_turn is not None:
                on_turn(entry)
            at = nxt
    metric, value, correct = _score(spec, truth, said)
    summary = _summary(
        ws, model, spec, start, end, metric, value, arms, timeline, time.perf_counter() - started
    )
    return ReplayResult(summary, timeline, correct, np.asarray(served_at, dtype="datetime64[ns]"))


def _last_event_id(ws: Workspace, model: str) -> int:
    events = ws.store.events(model, limit=1)
    return events[-1].id if events else 0


def _entry(ws: Workspace, model: str, result: Any, seen: int) -> tuple[TimelineEntry, int]:
    d = result.decision
    gate: Verdict | None = None
    if result.version is not None and d.action != "rollback":
        try:
            g = stored_gate(ws.store.get_version(model, result.version).details)
            gate = None if g is None else g.verdict
        except RetrainerError:
            gate = None
    new = [e for e in ws.store.events(model, limit=20) if e.id > seen]
    events = tuple(f"{e.action} {e.from_version or '–'} → {e.to_version or '–'}" for e in new)
    roles = ws.store.roles(model)
    ch = roles.challenger
    challenger = None if ch is None else f"{ch.version} {ch.mode} {ch.fraction:.0%}"
    entry = TimelineEntry(
        at=d.taken_at,
        action=d.action,
        reason=d.reasons[0] if d.reasons else "",
        outcome=d.outcome or "",
        champion=roles.champion,
        version=result.version,
        deployed=result.deployed,
        live_metric=d.numbers.get("live_metric"),
        metric=d.numbers.get("metric"),
        gate=gate,
        events=events,
        challenger=challenger,
    )
    return entry, (new[-1].id if new else seen)


def _score(spec: ModelSpec, truth: list[Any], said: list[Any]) -> tuple[str, float, np.ndarray]:
    if spec.task == "regression":
        err = np.abs(np.asarray(said, dtype=float) - np.asarray(truth, dtype=float))
        return "mae", float(err.mean()) if len(err) else math.nan, err
    ok = np.array([label_key(a) == label_key(b) for a, b in zip(truth, said, strict=True)])
    return "accuracy", float(ok.mean()) if len(ok) else math.nan, ok


def _summary(
    ws: Workspace,
    model: str,
    spec: ModelSpec,
    start: datetime,
    end: datetime,
    metric: str,
    value: float,
    arms: Counter[str],
    timeline: list[TimelineEntry],
    wall: float,
) -> ReplaySummary:
    versions = ws.store.list_versions(model)
    kinds = Counter(v.kind for v in versions)
    cpu = sum(float(v.details.get("fit_cpu_seconds", 0.0)) for v in versions)
    events = ws.store.events(model)
    return ReplaySummary(
        model=model,
        start=start,
        end=end,
        served=sum(n for a, n in arms.items() if a != "shadow"),
        metric=metric,
        value=value,
        by_arm=dict(arms),
        trainings=len(versions),
        full_retrains=kinds["initial"] + kinds["full_retrain"],
        fine_tunes=kinds["fine_tune"] + kinds["incremental_update"],
        training_cpu_seconds=round(cpu, 3),
        decisions=dict(Counter(e.action for e in timeline)),
        deployments=sum(1 for e in events if e.action in ("deploy", "promote")),
        rollbacks=sum(1 for e in events if e.action == "rollback"),
        gate_rejections=sum(1 for e in timeline if e.gate is Verdict.REJECT),
        champion=ws.store.roles(model).champion,
        wall_seconds=round(wall, 2),
    )
