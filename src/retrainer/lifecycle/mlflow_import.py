"""Import an MLflow model as a retrainer version (``retrainer import MODEL --mlflow URI``).

The model (``models:/<name>/<version>``, ``models:/<name>@<alias>`` or
``runs:/<run id>/<path>``) is downloaded from the tracking server, its flavour gives a native
model file (:func:`~retrainer.lifecycle.mlflow_flavours.native_file`), and that file takes the
path of every imported model, :func:`~retrainer.lifecycle.import_model.import_model`: the same
checks (features against the spec, classes, predictions on the stored rows), the gate against
the champion, the spec's rollout, a verified artifact, lineage kind ``import``. The version's
``details.import.mlflow`` records the URI, the run id, the tracking server (password hidden),
the flavour and, for a registered model, its name and version.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..core.entities import ModelVersion
from ..core.errors import InputError
from ..core.fleet import check_single
from ..plumbing.workspace import Workspace
from .import_model import import_model
from .mlflow_flavours import native_file
from .mlflow_io import connect, failed, hide_password, mlflow_module, scrub, using

URI_FORMS = "models:/<name>/<version>, models:/<name>@<alias> or runs:/<run id>/<path>"
# MLflow's error codes for a name, version or run that is not there, or a malformed one
_NOT_THERE = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND", "BAD_REQUEST")


def check_model_uri(uri: str) -> str:
    """``uri`` when it names an MLflow model; InputError (exit 2) listing the forms.

    >>> check_model_uri("models:/churn/3")
    'models:/churn/3'
    """
    uri = uri.strip()
    if uri.startswith(("models:/", "runs:/")) and len(uri.split(":/", 1)[1].strip("/")) > 0:
        return uri
    raise InputError(
        f"{uri!r} is not an MLflow model URI. Give {URI_FORMS} (the tracking server with "
        "--tracking-uri or MLFLOW_TRACKING_URI).",
        uri=uri,
    )


def import_from_mlflow(
    ws: Workspace,
    model: str,
    model_uri: str,
    tracking_uri: str,
    *,
    force: bool = False,
    reason: str = "",
    created_by: str = "manual",
) -> ModelVersion:
    """Download ``model_uri`` from the MLflow server at ``tracking_uri`` and register it as
    a version of ``model`` (see the module doc); returns the version, as ``import_model``."""
    model_uri = check_model_uri(model_uri)
    check_single(ws.model_spec(model), "import")  # an unknown model is named before any download
    mlflow = mlflow_module("import")
    client = connect(tracking_uri, "import")
    registered = _registered(client, model_uri, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="retrainer-mlflow-") as tmp:
        try:
            with using(mlflow, tracking_uri):
                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=model_uri,
                        dst_path=str(Path(tmp) / "download"),
                        tracking_uri=tracking_uri,
                        registry_uri=tracking_uri,
                    )
                )
        except Exception as exc:
            raise _failed(exc, model_uri, tracking_uri, "download it") from None
        try:
            mlmodel = yaml.safe_load((local / "MLmodel").read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(
                f"{model_uri} is not an MLflow model: its MLmodel file cannot be read ({exc}). "
                f"Give the URI of a logged model ({URI_FORMS}).",
                uri=model_uri,
            ) from None
        flavour, path = native_file(local, mlmodel.get("flavors") or {}, model_uri, Path(tmp))
        run_id = str(mlmodel.get("run_id") or registered.get("run_id") or "")
        origin = {
            "uri": model_uri,
            "run_id": run_id,
            "tracking_uri": hide_password(tracking_uri),
            "flavour": flavour,
            **{k: v for k, v in registered.items() if k != "run_id"},
        }
        return import_model(  # type: ignore[no-any-return]
            ws,
            model,
            path,
            force=force,
            reason=reason,
            created_by=created_by,
            source=f"{model_uri}, MLflow run {run_id or 'unknown'}",
            origin={"mlflow": origin},
        )


def _registered(client: Any, uri: str, tracking_uri: str) -> dict[str, Any]:
    """The registered model version a ``models:/name/version`` or ``@alias`` URI names."""
    if not uri.startswith("models:/"):
        return {}
    rest = uri[len("models:/") :].strip("/")
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif "/" in rest and rest.rsplit("/", 1)[1].isdigit():
            name, number = rest.rsplit("/", 1)
            mv = client.get_model_version(name, number)
        else:
            return {}  # a logged model's id (models:/m-...): no registry entry to record
    except Exception as exc:
        raise _failed(exc, uri, tracking_uri, "find it in the registry") from None
    return {"registered_name": mv.name, "registered_version": str(mv.version), "run_id": mv.run_id}


def _failed(exc: BaseException, uri: str, tracking_uri: str, what: str) -> Exception:
    """InputError for a model the server says is not there, else the unavailable error."""
    if getattr(exc, "error_code", "") in _NOT_THERE:
        said = scrub(" ".join(str(exc).split()), tracking_uri)[:300]
        return InputError(
            f"The MLflow server at {hide_password(tracking_uri)} has no model {uri} ({said}). "
            f"Check the name and version ({URI_FORMS}).",
            uri=uri,
        )
    return failed(tracking_uri, exc, f"{what} ({uri})")
