"""The FastAPI app: ``create_app(ws or config)``. Routes are listed in docs/cli.md
(``retrainer serve``); the predict route is the hot path (see ``serving.predict``).

Background work starts with the app's lifespan and stops with it: the model reloader, the
prediction-log writer and the job pool. Shutdown flushes the prediction log.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from ..core.clock import utcnow
from ..core.errors import AuthError, ForbiddenError, InputError, NoChampion, RetrainerError
from ..evaluation.conformal import interval_bounds
from ..plumbing.workspace import Workspace
from ..scheduler import SchedulerService, build_jobs
from .admin import Jobs, admin_router
from .apidocs import install_docs
from .edge import Edge
from .errors import TooLarge, install_handlers, json_response, request_id
from .fleet_predict import predict_fleet
from .logqueue import LogItem, LogQueue
from .metrics import Metrics
from .model_holder import LAZY, AlertFn, ModelRegistry
from .models import ErrorBody, PredictRequest, PredictResponse
from .predict import parse_rows, score, warnings
from .routing import pick
from .sequence import as_sequence, score_sequence, with_time_rows
from .spool import spool_dir
from .status import scrape_gauges, status_router
from .ui import ui_router
from .writer import PredictionSink, WriterProcess, in_memory

ROW_BYTES, FEATURE_BYTES = 256, 128  # the body limit: 4 KiB + rows × (256 + 128 × features)


@dataclass
class ServerState:
    ws: Workspace
    registry: ModelRegistry
    logq: LogQueue | None
    metrics: Metrics
    jobs: Jobs
    token: str | None
    protect_reads: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def check_auth(self, request: Request, *, mutating: bool) -> None:
        """401 without a bearer token, 403 with a wrong one; reads are open unless
        ``auth.protect_reads``. Nothing is checked when no token is configured. Called for
        every request by ``serving.edge.Edge``, before the body is read."""
        if self.token is None or not (mutating or self.protect_reads):
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise AuthError(
                "This route needs 'Authorization: Bearer <token>' (RETRAINER_API_TOKEN is set)."
            )
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise ForbiddenError("The bearer token is wrong. Use the server's RETRAINER_API_TOKEN.")


def byte_limit(max_rows: int, n_features: int) -> int:
    return 4096 + max_rows * (ROW_BYTES + FEATURE_BYTES * n_features)


def _text(body: bytes) -> str:
    """The body as text (it is stored as the prediction log's input): JSON is UTF-8."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"Invalid request: the body is not UTF-8 ({exc.reason} at byte {exc.start}); "
            "send JSON encoded as UTF-8.",
            errors=[{"row": None, "field": None, "problem": "not UTF-8"}],
        ) from None


def _loads(text: str) -> Any:
    """The parsed body: orjson (several times faster than ``json`` on a batch of rows), then
    ``json`` for what it alone accepts (``NaN`` and ``Infinity`` literals, integers beyond 64
    bits), so the rows then meet the same checks whichever parser read them."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(
            f"Invalid request: the body is not valid JSON ({str(exc)[:80]}).",
            errors=[{"row": None, "field": None, "problem": "invalid JSON"}],
        ) from None


_PREDICT_DOC: dict[str, Any] = {
    "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (401, 403, 404, 409, 413, 422)
}


def _log_writer(given: str | None, store_url: str) -> str:
    value = (given or os.environ.get("RETRAINER_LOG_WRITER") or "").strip().lower()
    if value not in ("", "process", "thread"):
        raise InputError(
            f"RETRAINER_LOG_WRITER (or log_writer) is {value!r}; expected 'process' or "
            "'thread'. Unset it for the default (a writer process)."
        )
    if value == "thread" or in_memory(store_url):
        return "thread"
    return "process"


def _scheduler_wanted(given: bool | None) -> bool:
    if given is not None:
        return given
    value = os.environ.get("RETRAINER_SCHEDULER", "on").strip().lower()
    if value not in ("on", "off", "1", "0", "true", "false", ""):
        raise InputError(
            f"RETRAINER_SCHEDULER is {value!r}; expected 'on' or 'off'. Unset it for the "
            "default (on: the server runs the spec's schedules)."
        )
    return value not in ("off", "0", "false")


def create_app(
    source: Workspace | str | Path | None = None,
    *,
    alert: AlertFn | None = None,
    log_predictions: bool = True,
    spool: str | Path | None = None,
    token: str | None = None,
    flush_seconds: float = 0.2,
    log_writer: str | None = None,
    scheduler: bool | None = None,
) -> FastAPI:
    """The app for a workspace (or a config path; default ``RETRAINER_CONFIG``).

    ``log_writer``: where the prediction log's inserts run, ``"process"`` (a writer process,
    see ``serving.writer``; the default unless the store is in memory) or ``"thread"`` (the
    log's own thread, in this process); default ``RETRAINER_LOG_WRITER``.

    ``scheduler``: run the spec's schedules in this process while it serves (default
    ``RETRAINER_SCHEDULER``, on). Servers and ``retrainer scheduler`` processes on one store
    elect one leader, so each scheduled run happens once however many there are."""
    owns = not isinstance(source, Workspace)
    ws = source if isinstance(source, Workspace) else Workspace.open(source)
    jobs = SchedulerService(ws) if _scheduler_wanted(scheduler) and build_jobs(ws.spec) else None
    registry = ModelRegistry(ws, alert)
    logq, writer = None, None
    if log_predictions:
        sink: PredictionSink = ws.store
        if _log_writer(log_writer, ws.spec.store) == "process":
            sink = writer = WriterProcess(ws.spec.store, ws.store)
        logq = LogQueue(sink, spool or spool_dir(ws.spec), flush_seconds=flush_seconds)
    tok = token if token is not None else os.environ.get("RETRAINER_API_TOKEN") or None
    state = ServerState(ws, registry, logq, Metrics(), Jobs(ws), tok, ws.spec.auth.protect_reads)
    for name, m in ws.spec.models.items():
        state.limits[name] = byte_limit(m.serving.max_batch_rows, len(m.stored_features.all))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        registry.refresh_all()
        registry.start()
        if logq is not None:
            logq.start()
        if jobs is not None:
            jobs.start()
        try:
            yield
        finally:
            if jobs is not None:
                jobs.stop()  # a running job finishes first: shutdown never cuts a training
            registry.close()
            state.jobs.close()
            if logq is not None:
                logq.close()
            if writer is not None:
                writer.close()
            if owns:
                ws.close()

    app = FastAPI(title="retrainer", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.retrainer = state
    install_docs(app, state)  # Swagger UI from the package's assets; one schema per model
    install_handlers(app)
    app.add_middleware(Edge, state=state)  # inside CORS: preflights pass
    cors = ws.spec.cors
    if cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors.allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=cors.allow_headers,
        )

    @app.post(
        "/v1/models/{name}/predict",
        openapi_extra=_PREDICT_DOC,
        responses={200: {"model": PredictResponse}, **_ERRORS},
        tags=["predict"],
    )
    async def predict(request: Request) -> Response:
        """Score one row or a batch with the version the rollout routes it to."""
        t0 = time.perf_counter()
        name: str = request.path_params["name"]  # read here: no per-request parameter model
        rid = request_id(request)  # the token and the body's size: checked by serving.edge
        fleet = registry.fleets.get(name)
        if fleet is not None:  # rows routed to the members by fleet.by (serving.fleet_predict)
            try:
                text = _text(await request.body())
                parsed = _loads(text)
            except RetrainerError as exc:
                state.metrics.error(name, "-", "-", exc.code)
                raise
            return await predict_fleet(state, fleet, text, parsed, rid, t0)
        if name in registry.lazy:  # a fleet member's first request loads its champion
            await run_in_threadpool(registry.ensure, name)
        served = registry.get(name)
        version, arm = "-", "-"
        if served.champion is None and registry.wanted.get(name):
            raise NoChampion(
                f"Model {name!r}: champion {registry.wanted[name]} is not loaded (it failed "
                "verification or loading); see /ready and the server log."
            )
        try:
            spec = registry.entry(name)  # a member's: its fleet's entry
            text = _text(await request.body())
            rows = parse_rows(_loads(text), spec.serving.max_batch_rows)
            loaded, r = pick(served, name, rows, spec.id_column, rid)
            version, arm = loaded.version, r.arm
            filled = await with_time_rows(
                state, name, spec.time_column, rows, loaded, served.challenger
            )
            X, ids, unknown = loaded.codec.encode(filled.get(loaded.version, rows))
            cold: list[bool] | None = None
            sequence = as_sequence(loaded.predictor.model)
            if sequence is None:
                outputs, probabilities, probas = score(loaded, X)
            else:  # the entity's stored rows first (serving.sequence)
                outputs, probabilities, probas, cold = await run_in_threadpool(
                    score_sequence, state, name, loaded, sequence, rows
                )
        except RetrainerError as exc:
            state.metrics.error(name, version, arm, exc.code)
            raise
        except TooLarge:
            state.metrics.error(name, version, arm, "payload_too_large")
            raise
        body: dict[str, Any] = {"predictions": outputs}
        if probabilities is not None:
            body["probabilities"] = probabilities
        if loaded.predictor.interval is not None:  # a regression's calibrated interval
            body["lower"], body["upper"] = interval_bounds(loaded.predictor.interval, outputs)
        if cold is not None:  # a sequence model: which rows had no history at all
            body["cold_start"] = cold
        if unknown:  # categories the version never saw, scored as missing
            body.update(warnings(unknown))
            state.metrics.unknown(name, unknown)
        body.update(version=version, arm=arm, request_id=rid)
        response = json_response(body, headers={"x-request-id": rid})
        if logq is not None:
            shadow = served.challenger
            if r.shadow is None or shadow is None or shadow.version != r.shadow:
                shadow = None
            logq.put(
                LogItem(
                    name,
                    rid,
                    version,
                    arm,
                    text,
                    ids,
                    utcnow(),
                    outputs,
                    probas,
                    shadow=shadow,
                    rows=filled.get(shadow.version, rows) if shadow is not None else None,
                )
            )
        state.metrics.observe(name, version, arm, 200, time.perf_counter() - t0)
        return response

    # The hot route is matched first: FastAPI put its /openapi.json route (and the docs) ahead
    # of it, and the admin and status routes come after it.
    hot = next(r for r in app.router.routes if getattr(r, "endpoint", None) is predict)
    app.router.routes.remove(hot)
    app.router.routes.insert(0, hot)
    app.include_router(admin_router(state))
    app.include_router(status_router(state))
    app.include_router(ui_router(state))  # the dashboard at /ui

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """The process is up (it says nothing about the models: see /ready)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"], responses={503: {"description": "not ready"}})
    def ready() -> Response:
        """200 once every model with a champion in the store has a verified one loaded (a
        fleet's members once they are listed: each loads its champion on its first request)."""
        models = dict(registry.ready())
        ok = all(v in ("ready", "no champion", LAZY) for v in models.values())
        return json_response({"ready": ok, "models": models}, 200 if ok else 503)

    @app.get("/metrics", tags=["service"])
    def metrics(request: Request) -> Response:
        """Prometheus text exposition."""
        text = state.metrics.render(scrape_gauges(state))
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def app_from_env() -> FastAPI:
    """The factory ``uvicorn --factory`` calls in each worker (config from RETRAINER_CONFIG;
    ``RETRAINER_PREDICTION_LOG=off`` turns prediction logging off, ``RETRAINER_SCHEDULER=off``
    the schedules)."""
    log = os.environ.get("RETRAINER_PREDICTION_LOG", "on").lower() not in ("off", "0", "false")
    return create_app(None, log_predictions=log)
