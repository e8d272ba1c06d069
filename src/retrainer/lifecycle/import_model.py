"""Import a model trained elsewhere as a new version (``retrainer deploy MODEL --from-file``).

Accepted files, each the library's own format: a LightGBM text model (``booster.save_model``),
an XGBoost JSON model (``save_model("m.json")``), a CatBoost ``.cbm``, and a scikit-learn
random forest or linear model (:mod:`.sklearn_linear`: the ``linear`` family) saved with skops
(``skops.io.dump``). Pickle and joblib files are refused: loading one runs whatever code it
holds.

The file is checked before anything is written: it loads; it is a classifier for a
classification model and a regressor for a regression model; its feature names are the
spec's features (when the file stores none, their number must match and the spec's order is
taken; said in the version's ``details.import.notes``); a classifier's classes are the labels
of the stored rows (a LightGBM or XGBoost model knows only their number: class ``i`` is the
``i``-th label in the order retrainer sorts them); and it predicts on the model's newest
stored rows (the temporal holdout of its window), which give the version's metrics. Any
failure is an ``InputError`` naming the file and the problem; nothing is registered.

The model then becomes an ordinary artifact of its family (the same zip, meta and payload a
training writes, hashed and signed) and goes through the path of every candidate
(:func:`~retrainer.lifecycle.train.register_fitted`): the gate against the champion on the
newest rows it did not learn from, then :func:`~retrainer.lifecycle.rollout.place` with the
spec's rollout. A gate that does not pass ("insufficient" included) keeps the champion unless
``force``. Lineage: kind ``import``, parent the champion, a reason naming the file and its
SHA-256. Categorical features are not accepted yet: retrainer feeds them to a model as its own
level codes, which a model trained elsewhere does not know.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import InputError, IntegrityError
from ..core.fleet import check_single
from ..core.names import check_model_name
from ..core.spec import ModelSpec
from ..evaluation.splits import temporal_holdout
from ..families import family_class
from ..families.base import class_labels
from ..plumbing.workspace import Workspace
from .fitting import Evaluation, Fitted, score
from .sklearn_linear import ACCEPTED, is_linear, linear_state
from .train import check_target, choose_features, load_window, register_fitted, version_bump

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav")
FORMATS = (
    "a LightGBM text model (.txt, booster.save_model)",
    "an XGBoost JSON model (.json, save_model)",
    "a CatBoost model (.cbm)",
    "a scikit-learn random forest saved with skops (.skops)",
    "a scikit-learn linear model saved with skops (.skops: LogisticRegression, Ridge or "
    "LinearRegression, alone or after a SimpleImputer and a StandardScaler in a Pipeline)",
)
_LGB_CLASSIFY = {"binary": 2, "cross_entropy": 2, "xentropy": 2}
_LGB_MULTI = ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr")
_LGB_RANK = ("lambdarank", "rank_xendcg", "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart")
_CB_CLASSIFY = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")


@dataclass(frozen=True)
class Native:
    """What a native model file says about itself, and the payload its family loads."""

    family: str
    task: str
    features: list[str] | None  # None when the file stores no names
    n_features: int
    payload: bytes
    n_classes: int | None = None  # a classifier that knows only how many classes it has
    classes: list[Any] | None = None  # a classifier that knows its labels
    categorical: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Refused(Exception):
    """A problem with the file; the caller names the file."""


def import_model(
    ws: Workspace,
    model: str,
    path: str | Path,
    *,
    force: bool = False,
    reason: str = "",
    created_by: str = "manual",
    source: str | None = None,
    origin: dict[str, Any] | None = None,
) -> Any:
    """Verify the model file at ``path``, register it as a version of ``model`` (kind
    ``import``) and deploy it the way the spec's rollout and the gate say; returns the
    registered :class:`~retrainer.core.entities.ModelVersion` (``details`` say whether it
    was deployed, started as a challenger or held back, and the gate's verdict).

    ``source`` names where the file came from in messages and the lineage (default the
    path; an MLflow model URI for ``retrainer import --mlflow``); ``origin`` adds its own
    entries to the version's ``details.import`` (the MLflow run id)."""
    check_model_name(model, where="deploy --from-file")  # it names the artifact's folder
    spec = check_single(ws.model_spec(model), "import")
    path = Path(path)
    named = source or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"Cannot import {str(path)!r}: {exc.strerror or exc}. Give the path of a model file.",
            file=str(path),
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    frame = load_window(ws, spec)
    choice = choose_features(spec, frame)  # the set a training on these rows would use
    spec = choice.spec
    check_target(spec, frame)
    names = spec.feature_names
    cats = list(spec.active_features.categorical)
    labels = class_labels(frame["target"]) if spec.task == "classification" else []
    try:
        native = read_native(path, data, labels)
        order = check_native(spec, native, labels, names, cats)
        fitted = _evaluate(spec, native, order, frame)
    except _Refused as exc:
        raise InputError(f"Cannot import {named!r} into {model!r}: {exc}.", file=named) from None
    bump, _ = version_bump(ws, spec, native.family)
    champion = ws.store.roles(model).champion
    why = f"imported {source or path.name} (sha256 {digest})" + (f": {reason}" if reason else "")
    info = {
        "file": named,
        "sha256": digest,
        "format": native.family,
        "notes": native.notes,
        **(origin or {}),
    }
    return register_fitted(
        ws,
        spec,
        fitted,
        frame,
        bump=bump,
        parent=champion,
        kind="import",
        created_by=created_by,
        reason=why,
        deploy=True,
        details={"import": info, **({"feature_set": choice.details()} if choice.name else {})},
        force=force,
        require_pass=True,
    )


def detect(path: Path, data: bytes) -> str:
    """The format ``data`` is in (a family's native one, or ``skops``: a scikit-learn random
    forest or linear model); refuses pickle and unknown files.

    >>> detect(Path("m.cbm"), b"CBM1...")
    'catboost'
    """
    if path.suffix.lower() in PICKLE_SUFFIXES or data[:1] == b"\x80":
        raise _Refused(
            "it is a pickle/joblib file. Loading one runs whatever code it holds, so retrainer "
            "never loads them. Save the model in its library's own format instead "
            "(booster.save_model('model.txt') for LightGBM, save_model('model.json') for "
            "XGBoost, save_model('model.cbm') for CatBoost) or, for a scikit-learn estimator, "
            'convert it once where you trust the file: `python -c "import joblib, skops.io as '
            "s; s.dump(joblib.load('model.joblib'), 'model.skops')\"`, then import model.skops"
        )
    if data[:4] == b"CBM1":
        return "catboost"
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                if "schema.json" in zf.namelist():
                    return "skops"
        except zipfile.BadZipFile:
            pass
    head = data[:4096].lstrip()
    if head.startswith(b"{"):
        return "xgboost"
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    raise _Refused(
        f"its format is not one retrainer imports (suffix {path.suffix or 'none'!r}, it starts "
        f"with {data[:8]!r}). Accepted: {'; '.join(FORMATS)}"
    )


def read_native(path: Path, data: bytes, labels: list[Any]) -> Native:
    """Load the file with its library and describe it; ``_Refused`` when it does not load."""
    fmt = detect(path, data)
    reader = {
        "lightgbm": _lightgbm,
        "xgboost": _xgboost,
        "catboost": _catboost,
        "skops": _skops,
    }[fmt]
    try:
        return reader(data, labels)
    except _Refused:
        raise
    except Exception as exc:  # each library raises its own types
        raise _Refused(
            f"it does not load as {fmt} ({type(exc).__name__}: {exc}). Check that it is "
            "the file the library saved, complete and not edited"
        ) from None


def _lightgbm(data: bytes, labels: list[Any]) -> Native:
    import lightgbm as lgb

    text = data.decode("utf-8")
    booster = lgb.Booster(model_str=text)
    found = re.search(r"^objective=(\S+)", text, re.M)
    objective = found.group(1) if found else "regression"
    cats: list[str] = []
    names = booster.feature_name()
    if booster.pandas_categorical or re.search(r"^num_cat=[1-9]", text, re.M):
        cats = ["(categorical splits)"]
    if objective in _LGB_RANK:
        raise _Refused(
            f"it is a ranking model (objective {objective}); import a classifier or regressor"
        )
    n_classes = _LGB_CLASSIFY.get(objective)
    if objective in _LGB_MULTI:
        n_classes = booster.num_model_per_iteration()
    task = "regression" if n_classes is None else "classification"
    return Native(
        "lightgbm", task, _named(names), booster.num_feature(), data, n_classes, None, cats
    )


def _xgboost(data: bytes, labels: list[Any]) -> Native:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    learner = json.loads(booster.save_config())["learner"]
    objective = learner["objective"]["name"]
    n_classes: int | None = None
    if objective == "binary:logistic":
        n_classes = 2
    elif objective == "multi:softprob":
        n_classes = int(learner["learner_model_param"]["num_class"])
    elif not objective.startswith(("reg:", "count:")):
        raise _Refused(
            f"its objective {objective!r} gives neither class probabilities nor a regression "
            "value; train a classifier with binary:logistic or multi:softprob, or a regressor "
            "with a reg: objective"
        )
    names, types = booster.feature_names, booster.feature_types or []
    cats = [n for n, t in zip(names or types, types, strict=False) if t == "c"]
    # retrainer scores an unnamed matrix in the schema's order: the names were checked
    booster.feature_names = None
    booster.feature_types = None
    payload = bytes(booster.save_raw("json"))
    task = "regression" if n_classes is None else "classification"
    return Native(
        "xgboost", task, _named(names), booster.num_features(), payload, n_classes, None, cats
    )


def _catboost(data: bytes, labels: list[Any]) -> Native:
    import catboost

    model = catboost.CatBoost()
    model.load_model(blob=data)
    loss = str(model.get_all_params().get("loss_function", ""))
    names = list(model.feature_names_ or [])
    cats = [names[i] for i in model.get_cat_feature_indices()]
    classes = None
    if loss.split(":")[0] in _CB_CLASSIFY:
        clf = catboost.CatBoostClassifier()
        clf.load_model(blob=data)
        classes = [_plain(c) for c in clf.classes_]
    task = "classification" if classes is not None else "regression"
    return Native("catboost", task, _named(names), len(names), data, None, classes, cats)


def _skops(data: bytes, labels: list[Any]) -> Native:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    from ..families import skops_io

    try:
        est = skops_io.loads(data)
    except IntegrityError as exc:
        raise _Refused(
            "it holds types retrainer does not load from a skops file (only scikit-learn, "
            f"NumPy and builtin ones): {exc}"
        ) from None
    if is_linear(est):
        return _linear(est, labels)
    if not isinstance(est, RandomForestClassifier | RandomForestRegressor):
        raise _Refused(
            f"it holds a {type(est).__name__}; a skops file must hold a RandomForestClassifier "
            f"or RandomForestRegressor (the randomforest family), or {ACCEPTED} (the linear "
            "family)"
        )
    if not hasattr(est, "estimators_"):
        raise _Refused("its random forest is not fitted; fit it before saving")
    names = [str(n) for n in getattr(est, "feature_names_in_", [])] or None
    classes = None
    if isinstance(est, RandomForestClassifier):
        classes = [_plain(c) for c in est.classes_]
        if classes == labels:
            # retrainer's forests learn class indices; so does this one from now on
            index = np.arange(len(classes))
            est.classes_ = index
            for tree in est.estimators_:
                tree.classes_ = index
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_  # scored on retrainer's unnamed matrix; names were checked
    task = "regression" if classes is None else "classification"
    payload = skops_io.dumps(est)
    return Native("randomforest", task, names, int(est.n_features_in_), payload, None, classes)


def _linear(est: Any, labels: list[Any]) -> Native:
    """A scikit-learn linear model (:mod:`.sklearn_linear`) as the linear family's payload;
    a classifier's classes become indices of the stored labels when they are those labels."""
    try:
        state, notes = linear_state(est)
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    classes = None if state["classes"] is None else [_plain(c) for c in state["classes"]]
    if classes is not None:  # other classes than the labels are refused by check_native
        state["classes"] = list(range(len(classes))) if classes == labels else classes
    names = [str(n) for n in getattr(est, "feature_names_in_", [])] or None
    task = "regression" if classes is None else "classification"
    payload = json.dumps(state, sort_keys=True).encode()
    n_features = len(state["medians"])
    return Native("linear", task, names, n_features, payload, None, classes, notes=notes)


def check_native(
    spec: ModelSpec, native: Native, labels: list[Any], names: list[str], cats: list[str]
) -> list[str]:
    """The file's feature order (the spec's names) after checking task, features and
    classes against the spec and the stored labels; ``_Refused`` names what differs."""
    if native.task != spec.task:
        kind = "regressor" if native.task == "regression" else "classifier"
        raise _Refused(
            f"it holds a {kind} ({native.family}), but model {spec.name!r} is a {spec.task} "
            f"model. Import a {'classifier' if spec.task == 'classification' else 'regressor'}"
        )
    if cats or native.categorical:
        raise _Refused(
            f"categorical features ({', '.join(cats or native.categorical)}) cannot be imported "
            "yet: retrainer feeds them to a model as its own level codes, which a model trained "
            "elsewhere does not know. Train this model with `retrainer train`"
        )
    if native.features is None:
        if native.n_features != len(names):
            raise _Refused(
                f"its model takes {native.n_features} features, the spec of {spec.name!r} has "
                f"{len(names)} ({', '.join(names)}). Train it on exactly the spec's features"
            )
        native.notes.append(
            "the file stores no feature names: its columns were taken as the spec's features "
            f"in order ({', '.join(names)})"
        )
        order = names
    else:
        missing = [f for f in names if f not in native.features]
        extra = [f for f in native.features if f not in names]
        if missing or extra:
            raise _Refused(
                "its features differ from the spec's: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {missing}" if missing else "",
                        f"not in the spec {extra}" if extra else "",
                    )
                    if part
                )
                + f". The spec of {spec.name!r} lists {names}; train the model on those columns"
            )
        order = list(native.features)
    if spec.task == "classification":
        if native.classes is not None and native.classes != labels:
            raise _Refused(
                f"its classes {native.classes} are not the labels of the stored rows {labels}. "
                "Train it on the same target values"
            )
        if native.n_classes is not None and native.n_classes != len(labels):
            raise _Refused(
                f"its model predicts {native.n_classes} classes, the stored rows hold "
                f"{len(labels)} labels {labels}. Train it on the same target values"
            )
        if native.n_classes is not None:
            native.notes.append(
                f"the file knows classes by index: class i is the i-th stored label of {labels}"
            )
    return order


def _evaluate(spec: ModelSpec, native: Native, order: list[str], frame: pd.DataFrame) -> Fitted:
    """The family model of the file, scored on the newest stored rows (its holdout)."""
    klass = family_class(native.family)
    X, y = frame[order], frame["target"]
    try:
        model = klass.adopt(
            spec.task, order, [], native.payload, X, y, threads=spec.training.threads
        )
    except Exception as exc:
        raise _Refused(
            f"its {native.family} model does not load ({type(exc).__name__}: {exc})"
        ) from None
    _, hold = temporal_holdout(len(frame), spec.training.holdout_fraction)
    try:
        scored = score(model, X.iloc[hold], y.iloc[hold])
    except Exception as exc:
        raise _Refused(
            f"it does not predict on the newest {hold.stop - hold.start} stored rows "
            f"({type(exc).__name__}: {exc})"
        ) from None
    evaluation = Evaluation.of_rows(model, frame, hold, scored)
    return Fitted(model, native.family, {}, evaluation, from_recipe=False)


def _named(names: Sequence[str] | None) -> list[str] | None:
    """Feature names, or None for a library's placeholders (Column_0, f0, "0"...).

    >>> _named(["Column_0", "Column_1"]), _named(["0", "1"]), _named(["age"])
    (None, None, ['age'])
    """
    if not names:
        return None
    for fmt in ("Column_{}", "f{}", "{}"):
        if all(n == fmt.format(i) for i, n in enumerate(names)):
            return None
    return list(names)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
