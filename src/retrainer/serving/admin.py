"""Mutating routes (feedback, train, maintain, deploy, rollback) and background jobs.

Each route with a Python API counterpart calls it (a ``Retrainer`` over the server's
workspace, acting as ``api``) and answers its result's ``to_dict()``, the JSON that
``retrainer COMMAND --json`` prints too: the three cannot drift apart.

Training and maintenance run in one background thread, one job at a time (a 2-core machine
serves while it trains); ``POST .../train`` answers 202 with a job id at once and
``GET /v1/jobs/{id}`` reports its state and result. Jobs live in memory: a restart forgets
them (the versions and decisions they made are in the store).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pandas as pd
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..api.facade import Retrainer
from ..core.clock import utcnow
from ..core.errors import InputError, RetrainerError
from ..lifecycle.feedback import record_feedback
from ..lifecycle.fleet_feedback import fleet_feedback_frame
from ..plumbing.workspace import Workspace
from .errors import error_response, json_response, log
from .inputs import check_rows
from .models import (
    DeployRequest,
    FeedbackRequest,
    JobView,
    MaintainRequest,
    RollbackRequest,
    TrainRequest,
)

if TYPE_CHECKING:
    from .app import ServerState

MAX_JOBS = 200  # finished jobs kept in memory


class Jobs:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, model: str, fn: Any) -> dict[str, Any]:
        job: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "kind": kind,
            "model": model,
            "state": "queued",
            "submitted_at": utcnow().isoformat(),
        }
        with self._lock:
            self._jobs[job["id"]] = job
            done = [k for k, j in self._jobs.items() if j["state"] in ("succeeded", "failed")]
            for k in done[: max(0, len(done) - MAX_JOBS)]:
                del self._jobs[k]
        self._pool.submit(self._run, job, fn)
        return dict(job)

    def _run(self, job: dict[str, Any], fn: Any) -> None:
        job.update(state="running", started_at=utcnow().isoformat())
        try:
            result = fn()
            job.update(state="succeeded", result=result)
        except RetrainerError as exc:
            job.update(state="failed", error=exc.to_dict())
        except Exception as exc:
            log.exception("job %s (%s %s) crashed", job["id"], job["kind"], job["model"])
            job.update(state="failed", error={"error": "internal", "message": repr(exc)})
        job["finished_at"] = utcnow().isoformat()

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return dict(job)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def admin_router(state: ServerState) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["admin"])
    ws = state.ws
    rt = Retrainer.over(ws, actor="api")  # the API's methods, recorded as done through REST

    async def guard(request: Request, name: str) -> None:
        """The model's existence, checked before the body is validated (the token, the
        origin, the content type and the body's size were checked by ``serving.edge``)."""
        state.registry.get(name)

    mutating = [Depends(guard)]

    async def fleet_or_model(request: Request, name: str) -> None:
        """A model's, or a fleet's, existence (feedback routes a fleet's actuals by member)."""
        if name not in state.registry.fleets:
            state.registry.get(name)

    @r.post("/models/{name}/feedback", dependencies=[Depends(fleet_or_model)])
    def feedback(name: str, body: FeedbackRequest, request: Request) -> Response:
        """Record actual outcomes by entity id (same semantics as `retrainer feedback`); a
        fleet's actuals carry its `by` column and go to each row's member."""
        spec = ws.model_spec(name)
        check_rows(body.actuals, ids=("entity_id", spec.id_column))
        alias = {"entity_id": spec.id_column, "actual": spec.target}
        rows = [{alias.get(k, k): v for k, v in row.items()} for row in body.actuals]
        frame = pd.DataFrame.from_records(rows)
        if spec.is_fleet:
            result = fleet_feedback_frame(ws, name, frame, where="request")
        else:
            result = record_feedback(ws, name, frame, where="request")
        view = result.to_dict()
        if result.received and result.rejected == result.received:
            raise InputError("Every actual was rejected; see first_rejects.", **view)
        return json_response(view)

    @r.post("/models/{name}/train", status_code=202, response_model=JobView, dependencies=mutating)
    def train_route(name: str, request: Request, body: TrainRequest | None = None) -> Response:
        """Full retrain in the background; returns the job to poll at /v1/jobs/{id}."""
        b = body or TrainRequest()

        def run() -> dict[str, Any]:
            res = rt.train(
                name,
                family=b.family,
                deploy=b.deploy,
                days=b.days_back,
                force=b.force_retrain,
                reason="train via api",
            )
            return res.to_dict()  # the job's result: as `train --json`

        return json_response(state.jobs.submit("train", name, run), 202)

    @r.get("/jobs/{job_id}", response_model=JobView)
    def job(job_id: str, request: Request) -> Response:
        """A background job's state and, once finished, its result or error."""
        try:
            return json_response(state.jobs.get(job_id))
        except KeyError:
            err = RetrainerError(f"No job {job_id!r} on this server (jobs live in memory).")
            err.code = "job_not_found"
            return error_response(request, err, 404)

    @r.post("/models/{name}/maintain", dependencies=mutating)
    def maintain_route(
        name: str, request: Request, body: MaintainRequest | None = None
    ) -> Response:
        """One turn of the loop (monitor → policy → act), synchronously; as `maintain --json`."""
        res = rt.maintain(name, dry_run=(body or MaintainRequest()).dry_run)
        return json_response(res.to_dict())

    @r.post("/models/{name}/deploy", dependencies=mutating)
    def deploy(name: str, body: DeployRequest, request: Request) -> Response:
        """Make a version the champion (verified first); the server hot-reloads it. As
        `deploy --json`: the deployment event."""
        res = rt.deploy(name, body.version, reason=body.reason, force=body.force)
        _reload(state, name)
        return json_response(res.to_dict())

    @r.post("/models/{name}/rollback", dependencies=mutating)
    def rollback(name: str, request: Request, body: RollbackRequest | None = None) -> Response:
        """Return to the previous champion, or to ``to``. As `rollback --json`."""
        b = body or RollbackRequest()
        res = rt.rollback(name, to=b.to, reason=b.reason)
        _reload(state, name)
        return json_response(res.to_dict())

    return r


def _reload(state: ServerState, name: str) -> None:
    """Swap at once after a change made through this server (others wait for the poll)."""
    try:
        state.registry.refresh(name)
    except Exception as exc:
        log.warning("model %s: reload after change failed: %s", name, exc)
