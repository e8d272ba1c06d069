"""MLflow interop, the shared part and the export (``retrainer export MODEL VERSION --mlflow``).

MLflow is optional (``pip install 'retrainer[mlflow]'``) and imported only here, only when an
MLflow command runs: :func:`mlflow_module` turns its absence into a :class:`ConfigError`
(exit 2) that says how to install it. Before the first import it sets MLflow's HTTP settings
unless the caller set them (one retry, a 15 s timeout, no telemetry), so a tracking server
that does not answer fails in seconds, not after MLflow's default minutes of retries;
:func:`connect` then asks the server once and raises :class:`MlflowUnavailable` (exit 1)
naming the URI with any password hidden.

An export logs one version to a run of the experiment ``retrainer-<model>`` (or
``experiment``): the model in its library's own MLflow flavour (``lightgbm``, ``xgboost``,
``catboost``, ``sklearn`` saved with skops for ``randomforest``) with the spec's feature names
and, for a random forest, the class labels; the version's params; its holdout metrics (and
the gate's challenger and champion values as ``gate.<metric>``/``gate.champion.<metric>``);
the lineage and identity as ``retrainer.*`` tags (see :func:`version_tags`). The logged model
is registered under ``registered_name`` (default the model's name) with the same tags.
River models have no MLflow flavour and are refused, as are the other families and
categorical features (a model reads them as retrainer's own level codes).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..core.entities import ModelVersion
from ..core.errors import CapabilityError, ConfigError, RetrainerError
from ..evaluation.gate_types import stored_gate
from ..plumbing.workspace import Workspace

EXPORTABLE = ("randomforest", "lightgbm", "xgboost", "catboost", "linear")
INSTALL = "pip install 'retrainer[mlflow]'"
# MLflow's own defaults retry for minutes; a caller's own setting wins
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
ARTIFACT_PATH = "model"


class MlflowUnavailable(RetrainerError):
    """The MLflow tracking server or registry cannot be reached, or refused the request."""

    code = "mlflow_unavailable"


@dataclass(frozen=True)
class MlflowExport:
    """Where an exported version went (``retrainer export --json`` prints ``to_dict()``)."""

    model: str
    version: str
    tracking_uri: str  # password hidden
    experiment: str
    run_id: str
    model_uri: str  # models:/<registered name>/<registered version>
    logged_model_uri: str  # what log_model returned (models:/m-... in MLflow 3)
    registered_name: str
    registered_version: str
    flavour: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def hide_password(uri: str) -> str:
    """``uri`` with the password of its user part replaced by ``***``.

    >>> hide_password("http://alice:s3cret@mlflow.example:5000/path")
    'http://alice:***@mlflow.example:5000/path'
    >>> hide_password("models:/churn/3")
    'models:/churn/3'
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return uri.replace(parts.netloc, f"{user}:***@{netloc[1]}", 1)


def scrub(text: str, uri: str) -> str:
    """``text`` (an MLflow or HTTP error) with ``uri``'s password replaced by ``***``.

    >>> scrub("GET http://a:pw@h/x failed", "http://a:pw@h")
    'GET http://a:***@h/x failed'
    """
    password = urlsplit(uri).password
    return text if not password else text.replace(password, "***")


def mlflow_module(command: str) -> ModuleType:
    """The ``mlflow`` package, imported now with quick HTTP settings; ConfigError (exit 2)
    naming ``command`` and the install line when it is missing."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError as exc:
        raise ConfigError(
            f"`retrainer {command}` needs MLflow, which is not installed ({exc}). Install it "
            f"with `{INSTALL}` (MLflow 3.x).",
            missing="mlflow",
        ) from None
    import logging

    for name in ("mlflow", "alembic"):  # progress notes on stderr; failures still raise
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def connect(tracking_uri: str, command: str) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` after one request that shows the server
    answers; MlflowUnavailable (exit 1) naming the URI, password hidden, when it does not."""
    mlflow_module(command)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # requests, MlflowException: whatever the transport raises
        raise unavailable(tracking_uri, exc) from None
    return client


@contextlib.contextmanager
def using(mlflow: ModuleType, tracking_uri: str) -> Iterator[None]:
    """MLflow's fluent API on ``tracking_uri`` (tracking and registry) for the block; the
    process's own settings as they were after it. (Some MLflow calls resolve a
    ``models:/`` URI with the global registry whatever URI they are given.)"""
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


_NO_ANSWER = ("Max retries exceeded", "Failed to establish", "timed out", "Connection")


def failed(tracking_uri: str, exc: BaseException, what: str) -> RetrainerError:
    """The error for MLflow failing to do ``what``: :func:`unavailable` when the server did
    not answer, else MLflow's own message (exit 1), password hidden."""
    text = str(exc)
    if any(s in text for s in _NO_ANSWER) or isinstance(exc, OSError):
        return unavailable(tracking_uri, exc)
    said = scrub(" ".join(text.split()), tracking_uri)
    return RetrainerError(
        f"MLflow at {hide_password(tracking_uri)} could not {what}: {type(exc).__name__}: "
        f"{said[:500]}",
        uri=hide_password(tracking_uri),
    )


def unavailable(tracking_uri: str, exc: BaseException) -> MlflowUnavailable:
    """The error for a request to ``tracking_uri`` that failed with ``exc``."""
    said = scrub(" ".join(str(exc).split()), tracking_uri)
    if len(said) > 200:
        said = said[:200] + "…"
    return MlflowUnavailable(
        f"The MLflow tracking server at {hide_password(tracking_uri)} did not answer "
        f"({type(exc).__name__}: {said}). Check the URI (--mlflow or MLFLOW_TRACKING_URI) "
        "and that the server runs, then retry.",
        uri=hide_password(tracking_uri),
    )


def version_tags(v: ModelVersion) -> dict[str, str]:
    """The ``retrainer.*`` tags of an exported version: identity and lineage.

    >>> from datetime import datetime
    >>> v = ModelVersion("churn", "1.2.0", "1.1.0", "lightgbm", {}, datetime(2024, 1, 1),
    ...     "manual", "full retrain", "full_retrain", None, None, 10, "fp", {}, {}, "u",
    ...     "ab12", None, 1)
    >>> t = version_tags(v)
    >>> t["retrainer.version_id"], t["retrainer.parent"], t["retrainer.artifact_sha256"]
    ('churn:1.2.0', '1.1.0', 'ab12')
    """
    tags = {
        "retrainer.version_id": f"{v.model}:{v.version}",
        "retrainer.model": v.model,
        "retrainer.version": v.version,
        "retrainer.family": v.family,
        "retrainer.artifact_sha256": v.sha256,
        "retrainer.parent": v.parent or "",
        "retrainer.kind": v.kind,
        "retrainer.reason": v.reason,
        "retrainer.created_by": v.created_by,
        "retrainer.created_at": v.created_at.isoformat(),
        "retrainer.train_start": v.train_start.isoformat() if v.train_start else "",
        "retrainer.train_end": v.train_end.isoformat() if v.train_end else "",
        "retrainer.rows": str(v.n_rows),
        "retrainer.data_fingerprint": v.fingerprint,
    }
    for key in ("holdout_start", "holdout_rows", "primary_metric"):
        if key in v.details:
            tags[f"retrainer.{key}"] = str(v.details[key])
    gate = stored_gate(v.details)
    if gate is not None:
        tags["retrainer.gate_verdict"] = gate.verdict.value
        tags["retrainer.gate_champion_version"] = gate.champion_version or ""
    return {k: val[:5000] for k, val in tags.items()}  # MLflow's tag value limit is 8000


def version_metrics(v: ModelVersion) -> dict[str, float]:
    """The holdout metrics, and the gate's values for the challenger and the champion.

    >>> from datetime import datetime
    >>> v = ModelVersion("m", "1.0.0", None, "lightgbm", {}, datetime(2024, 1, 1), "manual",
    ...     "r", "initial", None, None, 1, "", {}, {"auc": 0.8}, "u", "s", None, 1)
    >>> version_metrics(v)
    {'auc': 0.8}
    """
    out = {k: float(x) for k, x in v.metrics.items() if _finite(x)}
    gate = stored_gate(v.details)
    cmp = None if gate is None else gate.comparison  # a first version's budgets: no metrics
    if cmp is not None:
        for values, prefix in (
            (cmp.challenger_metrics, "gate."),
            (cmp.champion_metrics, "gate.champion."),
        ):
            out.update({f"{prefix}{k}": float(x) for k, x in values.items() if _finite(x)})
        for key, x in (("improvement", cmp.improvement), ("p_value", cmp.p_value)):
            if x is not None and _finite(x):
                out[f"gate.{key}"] = float(x)
    return out


def export_version(
    ws: Workspace,
    model: str,
    version: str,
    tracking_uri: str,
    *,
    registered_name: str | None = None,
    experiment: str | None = None,
) -> MlflowExport:
    """Log ``model`` ``version`` to the MLflow server at ``tracking_uri`` and register it
    (see the module doc); the version's artifact is read verified (hash and HMAC)."""
    v = ws.store.get_version(model, version)
    from ..families.base import read_artifact

    meta, payload = read_artifact(ws.artifact_bytes(v))
    family = str(meta["family"])
    if family not in EXPORTABLE:
        why = (
            "river models have no MLflow flavour, and retrainer does not write pickled code "
            "into a pyfunc model"
            if family == "river"
            else f"the {family} family has no MLflow flavour retrainer maps to"
        )
        raise CapabilityError(
            f"Cannot export {model} {version} to MLflow: {why}. Exportable families: "
            f"{', '.join(EXPORTABLE)}; train one of those to share the model through MLflow.",
            family=family,
        )
    schema = meta["schema"]
    if schema.get("categorical"):
        raise CapabilityError(
            f"Cannot export {model} {version} to MLflow: its categorical features "
            f"({', '.join(schema['categorical'])}) are fed to the model as retrainer's own "
            "level codes, which an MLflow user would not know. Export a model with numeric "
            "features only.",
            family=family,
        )
    names = list(schema["numeric"])
    classes = list(meta.get("classes") or [])
    mlflow = mlflow_module("export")
    client = connect(tracking_uri, "export")
    from .mlflow_flavours import log_native
    from .time_inputs import TimeInputs

    name = registered_name or model
    experiment = experiment or f"retrainer-{model}"
    tags = version_tags(v)
    tags["retrainer.features"] = ",".join(names)
    if classes:
        tags["retrainer.classes"] = json.dumps(classes)
    notes: list[str] = []
    if v.details.get("calibrator"):
        notes.append(
            "the version is calibrated in retrainer; the MLflow model gives the uncalibrated "
            "scores of the model itself"
        )
        tags["retrainer.calibrated"] = "true (the MLflow model is uncalibrated)"
    made = TimeInputs.of_columns(names).columns
    if made:
        notes.append(
            f"the version learnt inputs made from time ({', '.join(made)}; "
            "training.choice.previous_actual and time_features), which retrainer fills from "
            "its store and each row's time; a caller of the MLflow model passes them: the "
            "newest actual and features before each row, and the day of the year"
        )
    try:
        with using(mlflow, tracking_uri):
            mlflow.set_experiment(experiment)
            # MLflow writes "View run <url>" to stdout: not into --json, nor a password anywhere
            with (
                contextlib.redirect_stdout(io.StringIO()),
                mlflow.start_run(run_name=f"{model} {version}", tags=tags) as run,
            ):
                mlflow.log_params({k: _param(x) for k, x in v.params.items()})
                metrics = version_metrics(v)
                if metrics:
                    mlflow.log_metrics(metrics)
                flavour, info = log_native(family, str(meta["task"]), payload, names, classes, name)
                run_id = run.info.run_id
        registered = str(info.registered_model_version)
        for key, value in tags.items():
            client.set_model_version_tag(name, registered, key, value)
        client.set_model_version_tag(name, registered, "retrainer.run_id", run_id)
    except RetrainerError:
        raise
    except Exception as exc:
        raise failed(tracking_uri, exc, f"export {model} {version}") from None
    return MlflowExport(
        model=model,
        version=version,
        tracking_uri=hide_password(tracking_uri),
        experiment=experiment,
        run_id=run_id,
        model_uri=f"models:/{name}/{registered}",
        logged_model_uri=str(info.model_uri),
        registered_name=name,
        registered_version=registered,
        flavour=flavour,
        notes=tuple(notes),
    )


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's param value limit


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x == x and abs(x) != inf


inf = float("inf")
