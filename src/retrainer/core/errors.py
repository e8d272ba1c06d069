"""One error hierarchy. Each error has a code; one table maps codes to HTTP statuses and
CLI exit codes, so the CLI and the API never special-case an error type.

Messages name the thing, the bad value, what was expected and the fix:

>>> err = VersionNotFound("Model 'churn' has no version 1.4.0. Known versions: 1.0.0, 1.1.0.")
>>> err.code, http_status(err), exit_code(err)
('version_not_found', 404, 1)
"""

from __future__ import annotations

from typing import Any


class RetrainerError(Exception):
    """Base of every error retrainer raises on purpose."""

    code = "retrainer_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ConfigError(RetrainerError):
    """The spec file, an environment override or a setting is invalid."""

    code = "config_invalid"


class InputError(RetrainerError):
    """User-supplied data (a file, a request body, a flag) is invalid."""

    code = "input_invalid"


class ModelNotFound(RetrainerError):
    code = "model_not_found"


class VersionNotFound(RetrainerError):
    code = "version_not_found"


class NoChampion(RetrainerError):
    """An operation needs a champion and the model has none yet."""

    code = "no_champion"


class ConflictError(RetrainerError):
    """The operation contradicts the registry's state (e.g. rollback with no previous)."""

    code = "conflict"


class LeaseHeld(RetrainerError):
    """Another process holds the lease for this work."""

    code = "lease_held"


class QualityError(RetrainerError):
    """The data-quality gate stopped training."""

    code = "quality_failed"


class TrainingError(RetrainerError):
    code = "training_failed"


class DistributedError(TrainingError):
    """The Dask engine failed: its scheduler cannot be reached or a worker was lost. Nothing
    was registered; no fallback family trains in its place."""

    code = "distributed_failed"


class FamilyUnavailableError(RetrainerError):
    """A model family cannot be imported or lacks what it needs (e.g. weights)."""

    code = "family_unavailable"


class CapabilityError(RetrainerError):
    """The family cannot do what was asked (e.g. warm start)."""

    code = "capability_missing"


class IntegrityError(RetrainerError):
    """An artifact's bytes do not match the hash or HMAC recorded for it."""

    code = "artifact_integrity"


class StoreUnavailable(RetrainerError):
    """The store cannot be reached."""

    code = "store_unavailable"


class StoreBusy(RetrainerError):
    """Another writer holds the store's write lock longer than this one would wait.

    Nothing was written; the same command or request succeeds once the other writer ends.
    """

    code = "store_busy"


class SourceUnavailable(RetrainerError):
    """A model's own data source (Parquet files, a SQL database) cannot be read."""

    code = "source_unavailable"


class AuthError(RetrainerError):
    code = "unauthorized"


class ForbiddenError(RetrainerError):
    code = "forbidden"


# code -> (HTTP status, CLI exit code). Exit 2 is bad usage or bad input, 1 a failed operation.
_TABLE: dict[str, tuple[int, int]] = {
    RetrainerError.code: (500, 1),
    ConfigError.code: (422, 2),
    InputError.code: (422, 2),
    ModelNotFound.code: (404, 2),
    VersionNotFound.code: (404, 1),
    NoChampion.code: (409, 1),
    ConflictError.code: (409, 1),
    LeaseHeld.code: (409, 1),
    QualityError.code: (422, 1),
    TrainingError.code: (500, 1),
    DistributedError.code: (503, 1),
    FamilyUnavailableError.code: (422, 1),
    CapabilityError.code: (422, 1),
    IntegrityError.code: (500, 1),
    StoreUnavailable.code: (503, 1),
    StoreBusy.code: (503, 1),
    SourceUnavailable.code: (503, 1),
    AuthError.code: (401, 2),
    ForbiddenError.code: (403, 2),
}


def http_status(err: RetrainerError) -> int:
    """HTTP status for an error, by its code."""
    return _TABLE.get(err.code, (500, 1))[0]


def exit_code(err: RetrainerError) -> int:
    """CLI exit code for an error, by its code."""
    return _TABLE.get(err.code, (500, 1))[1]
