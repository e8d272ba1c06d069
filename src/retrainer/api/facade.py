"""``retrainer.open`` and the ``Retrainer`` object: the loop from Python, one call per step.

A thin facade over ``retrainer.lifecycle``, the same functions the CLI and the server call;
every method returns a typed, frozen result with ``to_dict()`` (see ``api.results``).
The whole loop, runnable, is in docs/python.md.

>>> import retrainer
>>> spec = {"store": "sqlite://", "artifacts": "memory://facade-doc", "models": {"rain": {
...     "task": "classification", "target": "rain", "id_column": "day_id",
...     "time_column": "date", "features": {"numeric": ["temperature", "dew_point"]}}}}
>>> with retrainer.open(spec) as rt:
...     rt.models, len(rt.versions("rain"))
(['rain'], 0)
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from ..core.errors import ConfigError, ConflictError, InputError
from .results import (
    DeployResult,
    FineTuneResult,
    MaintainResult,
    PredictResult,
    ReportResult,
    TrainResult,
    VersionInfo,
    VersionList,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..core.spec import Spec
    from ..lifecycle.drift_check import DriftCheck
    from ..lifecycle.feedback import FeedbackResult
    from ..lifecycle.ingest import IngestResult
    from ..lifecycle.monitor import MonitorReport
    from ..lifecycle.train import TrainPlan
    from ..plumbing.workspace import Workspace

PathLike = str | os.PathLike[str]
SPEC_FILE = "retrainer.yaml"


def open(
    source: PathLike | Mapping[str, Any] | Spec | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Retrainer:
    """Open a workspace: a spec file, a folder holding ``retrainer.yaml``, a spec mapping
    (as the YAML would parse), or ``None`` for ``RETRAINER_CONFIG`` or ./retrainer.yaml.

    ``RETRAINER_<MODEL>__<FIELD>`` variables override the spec as for the CLI (``environ``:
    use this mapping instead of ``os.environ``). Close the result, or use it in ``with``.

    >>> rt = open({"store": "sqlite://", "artifacts": "memory://open-doc", "models": {}})
    >>> rt.models
    []
    >>> rt.close()
    """
    from ..plumbing.workspace import Workspace

    return Retrainer(Workspace(_spec(source, environ)))


def _spec(source: PathLike | Mapping[str, Any] | Spec | None, environ: Any) -> Spec:
    from ..core.spec import Spec, default_config_path, load_spec, parse_spec

    if isinstance(source, Spec):
        return source
    if isinstance(source, Mapping):  # a deep copy: parsing names each model in place
        return parse_spec(copy.deepcopy(dict(source)), source="<dict>", environ=environ)
    if source is not None and not isinstance(source, str | os.PathLike):
        raise InputError(
            f"retrainer.open takes a spec file, a workspace folder or a spec mapping; got "
            f"{type(source).__name__}. Pass e.g. retrainer.open('retrainer.yaml')."
        )
    path = Path(source) if source is not None else default_config_path()
    if path.is_dir():
        if not (path / SPEC_FILE).is_file():
            raise ConfigError(
                f"Workspace folder {str(path)!r} has no {SPEC_FILE}. Write one with "
                f"`retrainer init {path / SPEC_FILE}`, or pass the spec file's path."
            )
        path = path / SPEC_FILE
    return load_spec(path, environ)


def _is_path(data: object) -> TypeGuard[PathLike]:
    return isinstance(data, str | os.PathLike)


class Retrainer:
    """The models of one spec with their store and artifacts; every step of the loop is a
    method taking the model's name. Built by :func:`retrainer.open`; a context manager that
    disposes the store's engine on close.

    ``actor`` is who the records name as having acted (a deployment event's
    ``triggered_by``, a version's ``created_by``, a decision's trigger): ``manual`` for a
    person at Python or the CLI, ``api`` for the REST server (see :meth:`over`)."""

    def __init__(self, workspace: Workspace, *, actor: str = "manual", owns: bool = True) -> None:
        self._ws = workspace
        self._actor = actor
        self._owns = owns
        self._closed = False

    @classmethod
    def over(cls, workspace: Workspace, *, actor: str = "manual") -> Retrainer:
        """A facade over a workspace someone else opened and will close (the REST server's):
        closing it leaves the workspace open. The server's routes call it with
        ``actor="api"``, so REST answers are the same ``to_dict()`` as the API and the CLI.

        >>> owner = open({"store": "sqlite://", "artifacts": "memory://over-doc", "models": {}})
        >>> server_side = Retrainer.over(owner.workspace, actor="api")
        >>> server_side.close()  # the workspace stays open for its owner
        >>> owner.models
        []
        >>> owner.close()
        """
        return cls(workspace, actor=actor, owns=False)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ", ".join(self.models)
        return f"<Retrainer {self._ws.spec.source} ({state})>"

    # -- the workspace ---------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        """The open workspace (spec, store, artifacts), for what the facade does not cover."""
        if self._closed:
            raise ConflictError(
                f"This Retrainer ({self._ws.spec.source}) is closed. Open another with "
                "retrainer.open(...)."
            )
        return self._ws

    @property
    def spec(self) -> Spec:
        return self._ws.spec

    @property
    def models(self) -> list[str]:
        """Every model: the spec's entries, a fleet's members in place of the fleet."""
        return self._ws.model_names()

    def close(self) -> None:
        """Dispose the store's engine and stop the alerters (unless built by :meth:`over`:
        then only this facade closes); closing twice is harmless."""
        if not self._closed:
            self._closed = True
            if self._owns:
                self._ws.close()

    def __enter__(self) -> Retrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- data ------------------------------------------------------------------------------

    def ingest(self, model: str, data: pd.DataFrame | PathLike) -> IngestResult:
        """Add labelled rows (a DataFrame with the spec's columns, or a CSV, Parquet or JSONL
        path), de-duplicated by id and time; bad rows are counted in ``rejected`` with their
        line (``rejects``), the rest goes in."""
        from ..lifecycle.ingest import ingest_file, ingest_frame

        ws = self.workspace
        if _is_path(data):
            return ingest_file(ws, model, Path(data))
        return ingest_frame(ws, model, _frame(data, "ingest"))

    def feedback(self, model: str, data: pd.DataFrame | PathLike) -> FeedbackResult:
        """Record actual outcomes (the id and target columns, optionally the time column; a
        DataFrame or a file path), joined to the logged predictions; idempotent. A fleet's
        actuals carry its ``by`` column and go to each row's member."""
        from ..lifecycle.feedback import feedback_file, record_feedback
        from ..lifecycle.fleet_feedback import fleet_feedback_file, fleet_feedback_frame

        ws = self.workspace
        if ws.model_spec(model).is_fleet:
            if _is_path(data):
                return fleet_feedback_file(ws, model, Path(data))
            return fleet_feedback_frame(ws, model, _frame(data, "feedback"))
        if _is_path(data):
            return feedback_file(ws, model, Path(data))
        return record_feedback(ws, model, _frame(data, "feedback"))

    # -- training and the registry ---------------------------------------------------------

    def plan(self, model: str, *, family: str | None = None, days: int | None = None) -> TrainPlan:
        """What ``train`` would do (window, family, version bump, quality); writes nothing."""
        from ..lifecycle.train import plan

        return plan(self.workspace, model, family=family, days_back=days)

    def train(
        self,
        model: str,
        *,
        deploy: bool = False,
        family: str | None = None,
        days: int | None = None,
        reason: str = "",
        force: bool = False,
        allow_quality_warnings: bool = False,
        search: bool = False,
        trials: int | None = None,
        search_seconds: float | None = None,
    ) -> TrainResult:
        """Fully retrain on the model's window and register a new version; with ``deploy`` it
        becomes champion when the gate lets it (``force`` overrides, recorded as forced).
        ``search``: a hyper-parameter search first (``trials`` / ``search_seconds``: its
        budget instead of ``training.search``'s; either asks for a search), recorded on the
        version.
        Holds the model's lease meanwhile: another process training or maintaining the model
        makes it raise ``LeaseHeld`` at once, with nothing trained."""
        from ..lifecycle.search import SearchRequest
        from ..lifecycle.train import train
        from ..plumbing.lease import held_lease, model_lease

        budget = trials is not None or search_seconds is not None  # a budget asks for one
        request = SearchRequest(trials, search_seconds) if search or budget else None
        with held_lease(self.workspace, model_lease(model)):  # one trainer per model
            r = train(
                self.workspace,
                model,
                family=family,
                deploy=deploy,
                days_back=days,
                reason=reason,
                force=force,
                allow_quality_warnings=allow_quality_warnings,
                created_by=self._actor,
                search=request,
            )
        return TrainResult.of(r)

    def fine_tune(
        self,
        model: str,
        *,
        deploy: bool = False,
        days: int | None = None,
        reason: str = "fine-tune",
    ) -> FineTuneResult:
        """Warm-start the champion on the rows after its window; registers a patch version."""
        from ..lifecycle.fine_tune import fine_tune
        from ..plumbing.lease import held_lease, model_lease

        with held_lease(self.workspace, model_lease(model)):  # one trainer per model
            r = fine_tune(
                self.workspace,
                model,
                days=days,
                deploy=deploy,
                reason=reason,
                created_by=self._actor,
            )
        return FineTuneResult.of(r)

    def versions(self, model: str, *, detail: bool = False) -> VersionList:
        """The model's versions with lineage, role and holdout metrics, oldest first."""
        from ..lifecycle.deploy import versions_with_roles

        rows = versions_with_roles(self.workspace, model)
        return VersionList(
            model, tuple(VersionInfo.of(r.version, r.role, detail=detail) for r in rows)
        )

    def deploy(
        self, model: str, version: str, *, reason: str = "manual deploy", force: bool = False
    ) -> DeployResult:
        """Make ``version`` the champion (its artifact verified before the switch)."""
        from ..lifecycle.deploy import deploy

        event = deploy(
            self.workspace, model, version, reason=reason, forced=force, triggered_by=self._actor
        )
        return DeployResult.of(event)

    def rollback(
        self, model: str, *, to: str | None = None, reason: str = "manual rollback"
    ) -> DeployResult:
        """Return to the previous champion, or to version ``to``."""
        from ..lifecycle.deploy import rollback

        event = rollback(self.workspace, model, to=to, reason=reason, triggered_by=self._actor)
        return DeployResult.of(event)

    # -- serving and the loop --------------------------------------------------------------

    def predict(
        self,
        model: str,
        data: pd.DataFrame | PathLike,
        *,
        version: str | None = None,
        log: bool = True,
        out: PathLike | None = None,
    ) -> PredictResult:
        """Score rows (a DataFrame or a file path) with the champion or ``version``.

        The predictions are logged, as the CLI and the server log them, so that ``feedback``
        joins the actuals to them and ``monitor`` sees live metrics; ``log=False`` scores
        without a trace. With a file and ``out``, the scored rows are streamed to ``out``
        (CSV, Parquet or JSONL) and ``frame`` is ``None``. A fleet's rows carry its ``by``
        column: each is scored by its member's champion (``member`` and ``member_version``
        columns say which) and logged under the member."""
        from ..lifecycle.predict import predict_file, predict_rows
        from ..plumbing.tables import read_table

        ws = self.workspace
        if out is not None:
            if not _is_path(data) or not log:
                raise InputError(
                    f"predict {model!r}: out= streams a logged file prediction (a file path "
                    "and log=True). For a DataFrame, or with log=False, drop out= and save "
                    "the returned .frame."
                )
            b = predict_file(ws, model, Path(data), Path(out), version=version)
            return PredictResult(model, b.version, b.rows, b.request_id, b.out)
        frame = read_table(Path(data)) if _is_path(data) else _frame(data, "predict")
        id_column = ws.model_spec(model).id_column
        if log and id_column not in frame.columns:
            warnings.warn(
                f"predict {model!r}: the rows have no {id_column!r} column (the spec's "
                "id_column), so no actual sent to feedback can join these logged predictions. "
                f"Keep {id_column!r} in the frame, or pass log=False.",
                stacklevel=2,
            )
        s = predict_rows(ws, model, frame, version=version, log=log)
        return PredictResult(model, s.version, len(s.frame), s.request_id, None, s.frame)

    def monitor(self, model: str, *, window: str | None = None) -> MonitorReport:
        """Live metrics per version over a rolling window (default the spec's), from the
        logged predictions joined to their actuals, and the degradation vs. each baseline."""
        from ..lifecycle.monitor import monitor

        return monitor(self.workspace, model, window=window)

    def drift(self, model: str, *, window: str | None = None) -> DriftCheck:
        """Per-feature data drift of the logged inputs against the champion's reference."""
        from ..lifecycle.drift_check import check_drift

        return check_drift(self.workspace, model, window=window)

    def maintain(self, model: str, *, dry_run: bool = False, wait: float = 0) -> MaintainResult:
        """Monitor, decide by the policy and (unless ``dry_run``) act once; the decision is
        stored either way. ``wait``: seconds to wait for another maintain's lease."""
        from ..lifecycle.maintain import maintain

        r = maintain(self.workspace, model, dry_run=dry_run, triggered_by=self._actor, wait=wait)
        return MaintainResult.of(r)

    def report(self, model: str, path: PathLike = "report.html") -> ReportResult:
        """Write the model's self-contained HTML report to ``path``."""
        from ..report import write_report

        ws = self.workspace
        ws.model_spec(model)
        written = write_report(ws, model, Path(path)).resolve()
        return ReportResult(model, str(written), written.stat().st_size)


def _frame(data: Any, step: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise InputError(
            f"{step} takes a pandas DataFrame or a file path (CSV, Parquet, JSONL); got "
            f"{type(data).__name__}. Wrap rows in pd.DataFrame(...) first."
        )
    return data
