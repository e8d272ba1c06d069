"""Request and response bodies of the REST API.

The predict route does not validate its body with these models (a hand-written check against
the feature schema is several times cheaper per row); they document it in the OpenAPI schema.
The admin routes validate their bodies with them; every text and number they hold is bounded
and storable (``serving.inputs``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .inputs import Days, Text, Version

Row = dict[str, Any]


class PredictRequest(BaseModel):
    """One row (``row``) or a batch (``rows``, 1 to ``serving.max_batch_rows``). A row maps
    each feature to its value (``null`` for missing where the family takes it) and may carry
    ``entity_id`` (or the spec's id column), which routes A/B and canary traffic."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rows": [{"entity_id": "c-42", "age": 31.0}]}]}
    )
    rows: list[Row] | None = Field(None, min_length=1)
    row: Row | None = None


class UnknownCategory(BaseModel):
    row: int = Field(description="The row's index in the request.")
    feature: str
    value: Any = Field(description="The value as sent.")
    reason: str = Field(examples=["unknown category, scored as missing"])


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = Field(
        None, description="Classifiers only: one {class: probability} per row."
    )
    lower: list[float | None] | None = Field(
        None,
        description=(
            "Regression with `calibration: conformal`: each prediction's lower bound (the "
            "interval holds the actual with probability `calibration_coverage`)."
        ),
    )
    upper: list[float | None] | None = Field(
        None, description="Regression with `calibration: conformal`: each upper bound."
    )
    cold_start: list[bool] | None = Field(
        None,
        description=(
            "Sequence models (`family: lstm`) only: per row, true when its entity had no "
            "earlier row (stored or earlier in the request), so it was scored from itself."
        ),
    )
    warnings: list[UnknownCategory] | None = Field(
        None,
        description=(
            "Present when a row holds a category the version never saw: it is scored as a "
            "missing value (as batch predict does), and each such value is named here (at "
            "most 100; `warnings_omitted` counts the rest; /metrics counts them all in "
            "`retrainer_unknown_category_total`)."
        ),
    )
    warnings_omitted: int | None = None
    version: str
    arm: Literal["champion", "challenger"]
    request_id: str


class FleetPredictResponse(PredictResponse):
    """A fleet's answer (``/v1/models/<fleet>/predict``): rows in the request's order, each
    scored by its entity's member."""

    members: list[str] = Field(description="Per row: the member that scored it.")
    versions: list[str] = Field(description="Per row: the member's version that scored it.")
    arms: list[Literal["champion", "challenger"]] = Field(description="Per row: the arm.")
    member: str | None = Field(None, description="When one member scored every row: it.")
    version: str | None = Field(  # type: ignore[assignment]
        None, description="When one member scored every row: its version."
    )
    arm: Literal["champion", "challenger"] | None = Field(  # type: ignore[assignment]
        None, description="When one member scored every row: its arm."
    )


class FeedbackRequest(BaseModel):
    """Actual outcomes: each row holds the spec's id column (or ``entity_id``) and target
    column (or ``actual``), optionally its time column."""

    actuals: list[Row] = Field(min_length=1)


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force_retrain: bool = Field(
        False, description="Deploy even if the gate rejects the new version (recorded forced)."
    )
    days_back: Days | None = Field(None, description="Train on the last N days only.")
    family: Text | None = Field(None, description="Override the spec's family.")
    deploy: bool = Field(True, description="Make the new version champion if the gate passes.")


class MaintainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = False


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Version
    force: bool = False
    reason: Text = "deploy via api"


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Version | None = None
    reason: Text = "rollback via api"


class JobView(BaseModel):
    id: str
    kind: str
    model: str
    state: Literal["queued", "running", "succeeded", "failed"]
    submitted_at: str
    started_at: str | None = None
    finished_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    error: str
    message: str
    details: dict[str, Any] | None = None
    request_id: str
