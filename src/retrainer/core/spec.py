"""The spec: ``retrainer.yaml`` validated once, typed, with errors that name the file, the
key path and the fix.

>>> spec = parse_spec({
...     "models": {"churn": {"task": "classification", "target": "churned",
...         "id_column": "member_id", "time_column": "event_time",
...         "features": {"numeric": ["age"], "categorical": ["plan"]}}}
... }, source="retrainer.yaml", environ={"RETRAINER_CHURN__FAMILY": "randomforest"})
>>> spec.model("churn").family, spec.model("churn").training.holdout_fraction
('randomforest', 0.2)
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import feature_sets
from .custom_metrics import check_gate
from .errors import ConfigError, ModelNotFound
from .family_params import check_params
from .feature_sets import PREVIOUS_ACTUAL, RESERVED_PREFIX, check_sets
from .fleet import Fleet, member_prefix, split_member
from .metrics import DEFAULT_PRIMARY, METRICS
from .names import NAME_RULE, PLAIN_NAME
from .spec_sections import (
    DASK_FAMILIES,
    Alerts,
    Data,
    Drift,
    Features,
    Feedback,
    FineTune,
    Gate,
    Monitor,
    Policy,
    Quality,
    Retention,
    Rollout,
    Schedule,
    Serving,
    Training,
    Validation,
    dask_family_message,
)

FAMILIES = (
    "randomforest",
    "lightgbm",
    "xgboost",
    "catboost",
    "river",
    "ensemble",
    "tabpfn",
    "sklearn",
    "mlp",
    "lstm",
    "linear",
)


class ModelSpec(BaseModel):
    """One prediction task and everything about keeping it good."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    task: Literal["classification", "regression"]
    target: str
    id_column: str
    time_column: str
    features: Features = Field(
        default_factory=Features,
        description="The feature columns; or leave it out and name sets in `feature_sets`.",
    )
    feature_sets: dict[str, Features] = Field(
        default_factory=dict,
        description=(
            "Named feature sets (`{original: {numeric, categorical}, enhanced: {...}}`), one "
            "chosen by `feature_set`; instead of `features`."
        ),
    )
    feature_set: str | None = Field(
        None,
        description=(
            "The feature set trainings use (default: the fallback set); "
            "`RETRAINER_<MODEL>__FEATURE_SET=original` switches it."
        ),
    )
    fallback_feature_set: str | None = Field(
        None,
        description=(
            "The set a training uses when the chosen set's columns are missing from the rows "
            "(default: the first set); the version records that it fell back and why."
        ),
    )
    family: str = "lightgbm"
    fallback_family: str | None = "randomforest"
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Parameters of `family` (flat), or kept per family: `{lightgbm: {...}, "
            "randomforest: {...}}`, each family (the chosen one and the fallback) taking its own."
        ),
    )
    calibration: Literal["none", "sigmoid", "isotonic", "conformal"] = Field(
        "none",
        description=(
            "Classifiers: `sigmoid` or `isotonic` probabilities. Regression: `conformal`, a "
            "prediction interval from the holdout's residuals (split conformal)."
        ),
    )
    calibration_coverage: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="With `calibration: conformal`, the share of actuals the interval covers.",
    )
    data: Data = Data()
    feedback: Feedback = Feedback()
    training: Training = Training()
    validation: Validation = Validation()
    quality: Quality = Quality()
    fine_tune: FineTune = FineTune()
    gate: Gate = Gate()
    drift: Drift = Drift()
    monitor: Monitor = Monitor()
    policy: Policy = Policy()
    rollout: Rollout = Rollout()
    schedule: Schedule = Schedule()
    alerts: Alerts = Alerts()
    retention: Retention = Retention()
    serving: Serving = Serving()
    fleet: Fleet | None = Field(
        None,
        description=(
            "`{by: <column>}`: one model per value of the column (a product, store or ticker), "
            "each with its own versions, gate, rollout and policy; see docs/fleets.md."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        for key, fam in (("family", self.family), ("fallback_family", self.fallback_family)):
            if fam is not None and fam not in FAMILIES:
                raise ValueError(
                    f"{key} {fam!r} is not a model family; valid: {', '.join(FAMILIES)}"
                )
        for fam in self.training.choice.families or ():
            if fam not in FAMILIES:
                raise ValueError(
                    f"training.choice.families lists {fam!r}, which is not a model family; "
                    f"valid: {', '.join(FAMILIES)}"
                )
        self._check_params()
        if self.training.engine == "dask" and self.family not in DASK_FAMILIES:
            raise ValueError(dask_family_message(self.family))
        if self.calibration == "conformal" and self.task != "regression":
            raise ValueError(
                "calibration 'conformal' gives a regression model a prediction interval; "
                "this model does classification. Use 'sigmoid' or 'isotonic' for calibrated "
                "probabilities"
            )
        if self.calibration in ("sigmoid", "isotonic") and self.task != "classification":
            raise ValueError(
                f"calibration {self.calibration!r} applies to classifiers only (it maps "
                "class scores to probabilities); this model does regression. Use "
                "'conformal' for a calibrated prediction interval, or 'none'"
            )
        leaves = self.training.choice.leaves or ()
        if self.serving.backend == "onnx" and "linear" in leaves:
            raise ValueError(
                "training.choice.leaves lists 'linear', but serving.backend: onnx cannot "
                "compile linear leaves (onnxmltools has no converter for them). Drop 'linear' "
                "from training.choice.leaves, or set serving.backend: native"
            )
        self._check_features()
        self._check_transform()
        self._check_fleet()
        check_gate(self.gate, self.task)
        self.policy.check_task(self.task)
        return self

    def _check_features(self) -> None:
        if self.feature_sets and self.features.all:
            raise ValueError(
                "features and feature_sets are both given; list the columns once: either "
                "features: {numeric, categorical}, or named sets under feature_sets"
            )
        check_sets(self.feature_sets, self.feature_set, self.fallback_feature_set)
        groups = {n: fs.all for n, fs in self.feature_sets.items()} or {"": self.features.all}
        for name, feats in groups.items():
            where = f"feature_sets.{name}" if name else "features"
            if not feats:
                raise ValueError(
                    "features lists no column; add features.numeric or .categorical (or name "
                    "sets under feature_sets)"
                )
            dup = sorted({f for f in feats if feats.count(f) > 1})
            if dup:
                raise ValueError(f"{where} lists {dup} more than once; list each column once")
            reserved = [f for f in feats if f.startswith(RESERVED_PREFIX)]
            if reserved:
                raise ValueError(
                    f"{where} lists {reserved}: names starting with {RESERVED_PREFIX!r} are "
                    "the inputs a retrain may add from time (e.g. "
                    f"{PREVIOUS_ACTUAL!r}, training.choice.previous_actual); rename that column"
                )
            for key in ("target", "id_column", "time_column"):
                if getattr(self, key) in feats:
                    raise ValueError(f"{key} {getattr(self, key)!r} is also listed in {where}")

    def _check_transform(self) -> None:
        sets = {"features": self.features} | {
            f"feature_sets.{n}": fs for n, fs in self.feature_sets.items()
        }
        for where, fs in sets.items():
            if fs.transform is not None and self.family != "sklearn":
                raise ValueError(
                    f"{where}.transform applies to family 'sklearn' (your own estimator, which "
                    f"receives the step's columns); this model's family is {self.family!r}. "
                    "Set family: sklearn with params.estimator, or remove the transform"
                )

    def _check_fleet(self) -> None:
        if self.fleet is None:
            return
        by = self.fleet.by
        if self.data.source != "store":
            raise ValueError(
                f"a fleet reads its members' rows from the store; data.source "
                f"{self.data.source!r} is not supported with fleet (yet): ingest the rows with "
                "`retrainer ingest`, which splits them by member"
            )
        for key in ("target", "id_column", "time_column"):
            if getattr(self, key) == by:
                raise ValueError(
                    f"fleet.by {by!r} is also the {key}; name the column that tells the members "
                    "apart (a product, store or ticker column)"
                )
        if by in self.stored_features.all:
            raise ValueError(
                f"fleet.by {by!r} is also a feature; within a member it has one value, so it "
                "tells the model nothing: remove it from the features"
            )

    @property
    def is_fleet(self) -> bool:
        """True for a fleet's template entry (not one of its members)."""
        return self.fleet is not None and split_member(self.name) is None

    def member(self, name: str) -> ModelSpec:
        """The spec of this fleet's member ``name`` (``<fleet>.<key>``): this entry, renamed.

        >>> m = ModelSpec(name="sales", task="regression", target="y", id_column="i",
        ...     time_column="t", features={"numeric": ["x"]}, fleet={"by": "store"})
        >>> m.is_fleet, m.member("sales.s1").name, m.member("sales.s1").is_fleet
        (True, 'sales.s1', False)
        """
        if not self.is_fleet or not name.startswith(member_prefix(self.name)):
            raise ValueError(f"{name!r} is not a member of fleet {self.name!r}")
        return self.model_copy(update={"name": name})

    @property
    def params_per_family(self) -> bool:
        """True when ``params`` holds one section per family rather than flat parameters."""
        return bool(self.params) and all(k in FAMILIES for k in self.params)

    @property
    def other_families(self) -> list[str]:
        """The families a full retrain's choice tries besides ``family``
        (``training.choice.families``): the spec's list, else ``["linear"]`` when ``family``
        was left unset and ``[]`` when the spec names it.

        >>> base = dict(task="regression", target="y", id_column="i", time_column="t",
        ...     features={"numeric": ["x"]})
        >>> ModelSpec(**base).other_families, ModelSpec(**base, family="lightgbm").other_families
        (['linear'], [])
        """
        listed = self.training.choice.families
        if listed is not None:
            return [f for f in listed if f != self.family]
        return [] if "family" in self.model_fields_set else ["linear"]

    def params_for(self, family: str) -> dict[str, Any]:
        """The parameters ``family`` trains with: its own section of per-family ``params``;
        with flat ``params``, those for the spec's ``family`` and none for another (the
        fallback, a ``--family`` override).

        >>> m = ModelSpec(task="regression", target="y", id_column="i", time_column="t",
        ...     features={"numeric": ["x"]}, family="lightgbm",
        ...     params={"lightgbm": {"num_leaves": 7}, "randomforest": {"max_depth": 4}})
        >>> m.params_for("lightgbm"), m.params_for("randomforest"), m.params_for("xgboost")
        ({'num_leaves': 7}, {'max_depth': 4}, {})
        """
        if self.params_per_family:
            return dict(self.params.get(family) or {})
        return dict(self.params) if family == self.family else {}

    def _check_params(self) -> None:
        named = sorted(k for k in self.params if k in FAMILIES)
        flat = sorted(k for k in self.params if k not in FAMILIES)
        if named and flat:
            raise ValueError(
                f"params mixes per-family sections {named} with flat parameters {flat}; "
                f"put every parameter under its family, e.g. params: {{{named[0]}: "
                f"{{{flat[0]}: ...}}}}"
            )
        if not named:
            try:
                check_params(self.family, self.task, self.params)
            except ValueError as exc:
                raise ValueError(
                    f"params: {exc}. (Flat params belong to family {self.family!r}; to keep "
                    "parameters for several families, write params: {<family>: {...}})"
                ) from None
            return
        for fam in named:
            section = self.params[fam]
            if section is None:
                continue
            if not isinstance(section, dict):
                raise ValueError(
                    f"params.{fam} must be a mapping of parameter -> value, got "
                    f"{type(section).__name__}"
                )
            try:
                check_params(fam, self.task, section)
            except ValueError as exc:
                raise ValueError(f"params.{fam}: {exc}") from None

    @property
    def primary_metric(self) -> str:
        """The metric the monitor, policy and rollouts watch: the gate's primary metric, or
        the task's default when the gate decides on a user metric (gate.metrics)."""
        metric = self.gate.primary_metric
        return metric if metric in METRICS else DEFAULT_PRIMARY[self.task]

    @property
    def active_features(self) -> Features:
        """The feature columns trainings use: the set ``feature_set`` chooses, or
        ``features`` (see :mod:`retrainer.core.feature_sets`)."""
        return feature_sets.active(self)

    @property
    def stored_features(self) -> Features:
        """Every column of every feature set: what ingest keeps and predictions log."""
        return feature_sets.stored(self)

    @property
    def feature_names(self) -> list[str]:
        """The names of :attr:`active_features`, numeric first."""
        return self.active_features.all


class Auth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    protect_reads: bool = False


class Cors(BaseModel):
    """Cross-origin access to the REST service: off unless origins are listed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    allow_origins: list[str] = []
    allow_headers: list[str] = ["Authorization", "Content-Type"]

    @model_validator(mode="after")
    def _origins(self) -> Cors:
        for origin in self.allow_origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f"origin {origin!r} is not a scheme and host such as "
                    "'https://dash.example.com' (no path, no trailing slash) or '*'"
                )
        return self


class Spec(BaseModel):
    """The whole file: where things are stored and every model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = "sqlite:///retrainer.db"
    artifacts: str = "artifacts"
    models: dict[str, ModelSpec]
    auth: Auth = Auth()
    cors: Cors = Cors()
    source: str = "<memory>"

    def model(self, name: str) -> ModelSpec:
        """The spec of model ``name``: an entry, or a member ``<fleet>.<key>`` of a fleet."""
        try:
            return self.models[name]
        except KeyError:
            parts = split_member(name)
            base = self.models.get(parts[0]) if parts else None
            if base is not None and base.is_fleet:
                return base.member(name)
            known = ", ".join(sorted(self.models)) or "(none)"
            raise ModelNotFound(
                f"Model {name!r} is not in the spec {self.source}. Known models: {known}.",
                model=name,
                known=sorted(self.models),
            ) from None


def default_config_path() -> Path:
    return Path(os.environ.get("RETRAINER_CONFIG", "retrainer.yaml"))


def load_spec(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Spec:
    """Read, override from the environment, and validate the spec file."""
    p = Path(path) if path is not None else default_config_path()
    if not p.exists():
        raise ConfigError(
            f"Config file {str(p)!r} does not exist. Create one with `retrainer init` or point "
            "--config / RETRAINER_CONFIG at it."
        )
    if p.is_dir():
        raise ConfigError(
            f"Config path {str(p)!r} is a folder, not a file. Point --config / RETRAINER_CONFIG "
            "at the spec file in it (e.g. retrainer.yaml)."
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}). Save the spec as UTF-8 YAML."
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read: {exc.strerror or exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: is not valid YAML: {exc}. Fix the syntax and retry.") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: expected a mapping with a 'models' key, got {type(data).__name__}."
        )
    spec = parse_spec(data, source=str(p), environ=environ)
    return _resolve_paths(spec, p.parent)


def _resolve_paths(spec: Spec, base: Path) -> Spec:
    store, artifacts = spec.store, spec.artifacts
    if store.startswith("sqlite:///") and not store.startswith("sqlite:////"):
        rel = store[len("sqlite:///") :]
        if rel and rel != ":memory:" and not Path(rel).is_absolute():
            store = "sqlite:///" + str((base / rel).resolve())
    if "://" not in artifacts and not Path(artifacts).is_absolute():
        artifacts = str((base / artifacts).resolve())
    return spec.model_copy(update={"store": store, "artifacts": artifacts})


def parse_spec(
    data: dict[str, Any], *, source: str = "<memory>", environ: Mapping[str, str] | None = None
) -> Spec:
    """Validate a spec mapping after applying ``RETRAINER_<MODEL>__<FIELD>`` overrides."""
    data = _apply_env(dict(data), os.environ if environ is None else environ, source)
    models = data.get("models")
    if isinstance(models, dict):
        for name, body in models.items():
            if not isinstance(name, str) or PLAIN_NAME.fullmatch(name) is None:
                raise ConfigError(f"{source}: models.{name!r}: not a valid model name. {NAME_RULE}")
            if isinstance(body, dict):
                models[name] = {**body, "name": name}
    try:
        return Spec.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(_format(exc, source), errors=_error_list(exc)) from None


def _apply_env(data: dict[str, Any], environ: Mapping[str, str], source: str) -> dict[str, Any]:
    for top in ("store", "artifacts"):
        if f"RETRAINER_{top.upper()}" in environ:
            data[top] = environ[f"RETRAINER_{top.upper()}"]
    models = data.get("models")
    if not isinstance(models, dict):
        return data
    by_env = {re.sub(r"[^A-Z0-9]", "_", str(n).upper()): n for n in models}
    for key, raw in environ.items():
        if not key.startswith("RETRAINER_") or "__" not in key:
            continue
        head, *path = key[len("RETRAINER_") :].split("__")
        if head not in by_env:
            raise ConfigError(
                f"Environment variable {key} names model {head.lower()!r}, which is not in "
                f"{source}. Known models: {', '.join(sorted(map(str, models)))}."
            )
        body = models[by_env[head]] = dict(models[by_env[head]] or {})
        node = body
        for part in path[:-1]:
            node = node.setdefault(part.lower(), {})
            if not isinstance(node, dict):
                raise ConfigError(f"Environment variable {key}: {part.lower()} is not a section.")
        try:
            node[path[-1].lower()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError as exc:
            where = f" ({exc.problem})" if isinstance(exc, yaml.MarkedYAMLError) else ""
            raise ConfigError(
                f"Environment variable {key}: {raw[:60]!r} is not a valid YAML value{where}. "
                "Quote text that holds ':', '[' or '{', e.g. '\"a: b\"'."
            ) from None
    return data


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Known keys of the model class that a location points into."""
    cls: Any = Spec
    for part in loc[:-1]:
        if cls is Spec and part == "models":
            cls = "models"
            continue
        if cls == "models":
            cls = ModelSpec
            continue
        field = cls.model_fields.get(part) if isinstance(cls, type) else None  # type: ignore[attr-defined]
        ann = getattr(field, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            cls = ann
        else:
            return []
    return list(cls.model_fields) if isinstance(cls, type) else []  # type: ignore[attr-defined]


def _error_list(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()]


def _format(exc: ValidationError, source: str) -> str:
    lines = []
    for e in exc.errors():
        loc = tuple(p for p in e["loc"] if not isinstance(p, int) or True)
        where = ".".join(str(p) for p in loc) or "(top level)"
        kind = e["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            options = [f for f in _fields_at(loc) if f not in ("name", "source")]
            close = difflib.get_close_matches(key, options, n=1, cutoff=0.75)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(options)}"
            lines.append(f"{source}: {where}: unknown key {key!r}; {hint}")
        elif kind == "missing":
            lines.append(f"{source}: {where}: required key is missing (it has no default); add it.")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            got_s = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
            lines.append(f"{source}: {where}: {msg}{got_s}.")
    return "Invalid config:\n  " + "\n  ".join(lines)
