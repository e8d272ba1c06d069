"""Row <-> entity conversion and JSON safety (NaN and infinities become null)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..core.entities import Challenger, DeploymentEvent, ModelVersion, Roles


def jsonsafe(value: Any) -> Any:
    """Make a value storable as JSON on every backend.

    >>> import numpy as np
    >>> jsonsafe({"a": float("nan"), "b": [1, float("inf")], "c": np.float32(0.5)})
    {'a': None, 'b': [1, None], 'c': 0.5}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonsafe(v) for v in value]
    if type(value).__module__ == "numpy":  # a numpy scalar (numpy itself is not imported here)
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def version_from_row(r: Any) -> ModelVersion:
    return ModelVersion(
        model=r.model,
        version=r.version,
        parent=r.parent,
        family=r.family,
        params=r.params,
        created_at=r.created_at,
        created_by=r.created_by,
        reason=r.reason,
        kind=r.kind,
        train_start=r.train_start,
        train_end=r.train_end,
        n_rows=r.n_rows,
        fingerprint=r.fingerprint,
        feature_schema=r.feature_schema,
        metrics={k: (math.nan if v is None else v) for k, v in r.metrics.items()},
        artifact_uri=r.artifact_uri,
        sha256=r.sha256,
        hmac=r.hmac,
        size_bytes=r.size_bytes,
        status=r.status,
        details=r.details,
    )


def version_to_row(v: ModelVersion) -> dict[str, Any]:
    sv = v.semver
    return {
        "model": v.model,
        "version": v.version,
        "major": sv.major,
        "minor": sv.minor,
        "patch": sv.patch,
        "parent": v.parent,
        "family": v.family,
        "kind": v.kind,
        "params": jsonsafe(v.params),
        "created_at": v.created_at,
        "created_by": v.created_by,
        "reason": v.reason,
        "train_start": v.train_start,
        "train_end": v.train_end,
        "n_rows": v.n_rows,
        "fingerprint": v.fingerprint,
        "feature_schema": jsonsafe(v.feature_schema),
        "metrics": jsonsafe(v.metrics),
        "details": jsonsafe(v.details),
        "artifact_uri": v.artifact_uri,
        "sha256": v.sha256,
        "hmac": v.hmac,
        "size_bytes": v.size_bytes,
        "status": v.status,
    }


def roles_from_row(model: str, r: Any) -> Roles:
    if r is None:
        return Roles(model, None, None)
    ch = None
    if r.challenger:
        ch = Challenger(
            r.challenger,
            r.challenger_mode,
            r.challenger_fraction,
            r.challenger_started,
            r.challenger_step or 0,
        )
    return Roles(model, r.champion, ch, r.champion_since)


def event_from_row(r: Any) -> DeploymentEvent:
    return DeploymentEvent(
        id=r.id,
        model=r.model,
        action=r.action,
        from_version=r.from_version,
        to_version=r.to_version,
        reason=r.reason,
        triggered_by=r.triggered_by,
        created_at=r.created_at,
        forced=bool(r.forced),
        gate=r.gate,
    )
