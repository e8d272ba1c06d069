"""Read routes (models, status, versions, monitor, drift, history) and the gauges of
``/metrics``.

A route with a Python API counterpart (versions, monitor, drift) calls it through a
``Retrainer`` over the server's workspace and answers its result's ``to_dict()``, as
``retrainer COMMAND --json`` prints it (``versions``: the ``versions`` list of it).

Live metrics come from ``lifecycle.monitor`` (which folds new predictions into the store's
hourly buckets); ``/metrics`` caches them for ``LIVE_TTL`` seconds so a scrape stays cheap.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..api.facade import Retrainer
from ..core.errors import ConflictError, RetrainerError
from ..core.fleet import member_prefix
from ..core.views import decision_view, event_view, roles_view, version_view
from ..lifecycle.drift_check import STATE_KEY as DRIFT_KEY
from ..lifecycle.drift_check import last_drift
from ..lifecycle.monitor import monitor
from .errors import json_response, log
from .inputs import query_duration
from .metrics import Gauge
from .writer import WriterProcess

if TYPE_CHECKING:
    from .app import ServerState

LIVE_TTL = 30.0


def status_router(state: ServerState) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["status"])
    ws = state.ws
    rt = Retrainer.over(ws, actor="api")

    def guard(request: Request, name: str | None = None) -> None:
        """The model's existence (the token was checked by ``serving.edge``)."""
        if name is not None:
            state.registry.get(name)

    @r.get("/models")
    def models(request: Request) -> Response:
        """Every served model with the versions this server has loaded."""
        guard(request)
        return json_response([served_view(state, m) for m in state.registry.models])

    @r.get("/models/{name}/status")
    def status(name: str, request: Request) -> Response:
        """Champion, challenger and rollout, live metrics, last decision and last training."""
        guard(request, name)
        view = {**roles_view(ws.store.roles(name)), **served_view(state, name)}
        try:
            view["live"] = rt.monitor(name).to_dict()
        except RetrainerError as exc:
            view["live"] = {"error": exc.code, "message": exc.message}
        last = ws.store.decisions(name, 1)
        view["last_decision"] = decision_view(last[-1]) if last else None
        versions = ws.store.list_versions(name)
        newest = max(versions, key=lambda v: v.created_at, default=None)
        roles = ws.store.roles(name)
        from ..store import role_of

        view["last_training"] = (
            None if newest is None else version_view(newest, role_of(newest, roles))
        )
        return json_response(view)

    @r.get("/models/{name}/versions")
    def versions(name: str, request: Request, detail: bool = False) -> Response:
        """Every version with lineage, role and holdout metrics (as `versions --json`; with
        ``?detail=true`` as `versions --detail --json`)."""
        guard(request, name)
        return json_response(rt.versions(name, detail=detail).to_dict()["versions"])

    @r.get("/models/{name}/monitor")
    def monitor_route(name: str, request: Request, window: str | None = None) -> Response:
        """Live metrics per version and the naive baselines over ``window`` (default the
        spec's), as `monitor --json`."""
        guard(request, name)
        query_duration(window, "window")
        return json_response(rt.monitor(name, window=window).to_dict())

    @r.get("/models/{name}/history")
    def history(name: str, request: Request) -> Response:
        """The deployment log (as `history --json`)."""
        guard(request, name)
        return json_response([event_view(e) for e in ws.store.events(name)])

    @r.get("/models/{name}/drift")
    def drift(name: str, request: Request, window: str | None = None) -> Response:
        """Per-feature drift of the live window against the champion's reference."""
        guard(request, name)
        query_duration(window, "window")
        try:
            d = rt.drift(name, window=window)
        except KeyError:
            raise ConflictError(
                f"Model {name!r}: the champion has no reference statistics to compare with. "
                "Retrain it with this version of retrainer."
            ) from None
        return json_response(d.to_dict())

    return r


def served_view(state: ServerState, name: str) -> dict[str, Any]:
    s = state.registry.served[name]
    return {
        "model": name,
        "served": {
            "champion": s.champion.version if s.champion else None,
            "challenger": s.challenger.version if s.challenger else None,
            "revision": s.revision,
            "ready": state.registry.ready()[name],
            "backends": {
                arm: loaded.backend.to_dict()
                for arm, loaded in (("champion", s.champion), ("challenger", s.challenger))
                if loaded is not None
            },
        },
    }


def scrape_gauges(state: ServerState) -> list[Gauge]:
    reg = state.registry
    served = Gauge("retrainer_served_info", "Versions loaded and serving, by arm.")
    reloads = Gauge("retrainer_reloads_total", "Hot reloads swapped in.", "counter")
    failures = Gauge("retrainer_reload_failures_total", "Versions that failed to load.", "counter")
    for m in reg.models:
        s = reg.served[m]
        for arm, loaded in (("champion", s.champion), ("challenger", s.challenger)):
            if loaded is not None:
                served.add(1, model=m, version=loaded.version, arm=arm)
        reloads.add(reg.reloads[m], model=m)
        failures.add(reg.failures[m], model=m)
    out = [served, reloads, failures]
    q = state.logq
    if q is not None:
        out += [
            Gauge("retrainer_prediction_log_queue_rows", "Rows waiting in memory.").add(q.depth),
            Gauge("retrainer_prediction_log_spool_rows", "Rows in the spool awaiting replay.").add(
                q.spool.pending
            ),
            Gauge("retrainer_prediction_log_spooled_total", "Rows ever spooled.", "counter").add(
                q.spool.spooled_total
            ),
            Gauge(
                "retrainer_prediction_log_written_total", "Rows written to the store.", "counter"
            ).add(q.written),
            Gauge(
                "retrainer_prediction_log_dropped_total", "Rows dropped (queue full).", "counter"
            ).add(q.dropped),
            Gauge(
                "retrainer_prediction_log_failed_total", "Rows the store refused.", "counter"
            ).add(q.failed),
            Gauge("retrainer_shadow_errors_total", "Shadow scorings that failed.", "counter").add(
                q.shadow_errors
            ),
            Gauge("retrainer_store_up", "1 when the last prediction-log write succeeded.").add(
                1 if q.store_up else 0
            ),
        ]
        w = q.store
        if isinstance(w, WriterProcess):
            out += [
                Gauge(
                    "retrainer_prediction_log_writer_batches_total",
                    "Prediction-log batches by where they were written.",
                    "counter",
                )
                .add(w.in_child, writer="process")
                .add(w.in_process, writer="server"),
                Gauge(
                    "retrainer_prediction_log_writer_restarts_total",
                    "Times the writer process was started again after dying.",
                    "counter",
                ).add(w.restarts),
            ]
    return [*out, *_live(state)]


def plain_models(state: ServerState) -> list[str]:
    """The models whose live metrics and feature drift scores ``/metrics`` shows: not a
    fleet's members (a thousand monitor reads per scrape would take minutes; a member's are
    at ``/v1/models/<fleet>.<key>/monitor`` and ``/drift``). A member's last drift check is
    shown without its per-feature scores (:func:`_member_drift`)."""
    return [m for m in state.registry.models if state.registry.fleet_of(m) is None]


def _live(state: ServerState) -> list[Gauge]:
    cached = state.cache.get("live")
    if cached is not None and time.monotonic() - cached[0] < LIVE_TTL:
        return list(cached[1])
    metric = Gauge("retrainer_live_metric", "Live metric over the monitor window.")
    preds = Gauge("retrainer_live_predictions", "Predictions in the monitor window.")
    labelled = Gauge("retrainer_live_labelled", "Labelled predictions in the monitor window.")
    degradation = Gauge(
        "retrainer_degradation",
        "Live degradation of the primary metric against the version's holdout baseline "
        "(0.1: 10% worse; absent below monitor.min_samples labelled pairs).",
    )
    for m in plain_models(state):
        try:
            report = monitor(state.ws, m)
        except Exception as exc:
            log.warning("model %s: live metrics unavailable: %s", m, exc)
            continue
        for v in [*report.versions, *report.baselines]:  # naive:* baselines, arm "baseline"
            ids = {"model": m, "version": v.version, "arm": v.arm}
            preds.add(v.predictions, **ids)
            labelled.add(v.labelled, **ids)
            for k, x in v.metrics.items():
                if x is not None:
                    metric.add(x, **ids, metric=k)
            if v.degradation is not None:
                degradation.add(v.degradation, **ids)
    gauges = [metric, preds, labelled, degradation, *_drift(state)]
    state.cache["live"] = (time.monotonic(), gauges)
    return gauges


def _drift(state: ServerState) -> list[Gauge]:
    """The last stored drift check of each model (made by ``maintain``, ``retrainer drift`` or
    the drift route); a scrape reads it and computes nothing."""
    share = Gauge("retrainer_drift_share", "Share of features drifted at the last drift check.")
    flag = Gauge("retrainer_drift", "1 when the last drift check found drift (2: critical).")
    score = Gauge("retrainer_drift_score", "PSI of each feature at the last drift check.")
    rows = Gauge("retrainer_drift_rows", "Logged rows the last drift check compared.")
    age = Gauge("retrainer_drift_checked_timestamp_seconds", "When the last drift check ran.")
    checks: list[tuple[str, tuple[str | None, Any] | None]] = []
    for m in plain_models(state):
        try:
            checks.append((m, last_drift(state.ws, m)))
        except Exception as exc:
            log.warning("model %s: last drift check unavailable: %s", m, exc)
    fleet = Gauge(
        "retrainer_fleet_members_drifted",
        "A fleet's members whose last drift check found drift (level: 1 drift, 2 critical).",
    )
    for name in sorted(state.registry.fleets):
        try:
            found = state.ws.store.member_states(member_prefix(name), DRIFT_KEY)
        except Exception as exc:
            log.warning("fleet %s: members' drift checks unavailable: %s", name, exc)
            continue
        levels = [0, 0, 0]
        for m, check in sorted(found.items()):
            if check[0] is not None:
                checks.append((m, (check[0], {**check[1], "psi": {}})))  # no per-feature
                levels[_level(check[1])] += 1
        fleet.add(levels[1] + levels[2], fleet=name, level="1")
        fleet.add(levels[2], fleet=name, level="2")
    for m, last in checks:
        if last is None or last[0] is None:
            continue
        ids = {"model": m, "version": last[0]}
        d = last[1]
        share.add(float(d["share"]), **ids)
        flag.add(_level(d), **ids)
        rows.add(int(d["rows"]), **ids)
        age.add(_epoch(d["at"]), **ids)
        for feature, psi in sorted(d["psi"].items()):
            score.add(float(psi), **ids, feature=feature)
    return [share, flag, score, rows, age, fleet]


def _level(check: dict[str, Any]) -> int:
    """0 no drift, 1 drift, 2 critical drift."""
    return 2 if check.get("critical") else 1 if check["drift"] else 0


def _epoch(at: str) -> float:
    """An ISO time stored naive in UTC as Unix seconds."""
    return datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
