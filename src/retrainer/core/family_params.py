"""The parameters each model family accepts: declared once here, checked in one place.

The table is plain data (no model library is imported), so the spec can be checked at load
time, by ``train --dry-run`` and by ``retrainer status``, with the same rule that the family's
constructor applies before training.

>>> check_params("lightgbm", "classification", {"num_leaves": 31})
>>> try:
...     check_params("lightgbm", "classification", {"max_leafs": 7})
... except ValueError as exc:
...     print(str(exc).split(" (")[0], "did you mean 'num_leaves'" in str(exc))
parameter(s) ['max_leafs'] are not accepted by the 'lightgbm' family True
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

# "package.module:attribute", the form of a path to user code (an estimator, a feature step)
PATH_RULE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

_RIVER_SHARED = frozenset(
    {
        "n_models",
        "max_features",
        "lambda_value",
        "grace_period",
        "max_depth",
        "delta",
        "tau",
        "leaf_prediction",
        "disable_weighted_vote",
        "binary_split",
        "max_size",
        "remove_poor_attrs",
        "merit_preprune",
    }
)
# River parameters that exist for one task only (its classifier and regressor differ).
RIVER_TASK_ONLY: dict[str, frozenset[str]] = {
    "classification": frozenset(
        {"split_criterion", "nb_threshold", "min_branch_fraction", "max_share_to_split"}
    ),
    "regression": frozenset({"aggregation_method", "model_selector_decay", "min_samples_split"}),
}

ACCEPTED: dict[str, frozenset[str]] = {
    # scikit-learn's RandomForestClassifier parameters minus random_state (the spec's seed)
    # and warm_start (set by fine-tune); tests/families check the list against sklearn.
    "randomforest": frozenset(
        {
            "bootstrap",
            "ccp_alpha",
            "class_weight",
            "criterion",
            "max_depth",
            "max_features",
            "max_leaf_nodes",
            "max_samples",
            "min_impurity_decrease",
            "min_samples_leaf",
            "min_samples_split",
            "min_weight_fraction_leaf",
            "monotonic_cst",
            "n_estimators",
            "n_jobs",
            "oob_score",
            "verbose",
        }
    ),
    "lightgbm": frozenset(
        {
            "n_estimators",
            "learning_rate",
            "num_leaves",
            "max_depth",
            "min_data_in_leaf",
            "min_child_samples",
            "feature_fraction",
            "colsample_bytree",
            "bagging_fraction",
            "subsample",
            "bagging_freq",
            "lambda_l1",
            "lambda_l2",
            "reg_alpha",
            "reg_lambda",
            "min_gain_to_split",
            "max_bin",
            "early_stopping_rounds",
            "num_threads",
            "min_sum_hessian_in_leaf",
            "cat_smooth",
            "max_cat_to_onehot",
            "extra_trees",
            "is_unbalance",
            "path_smooth",
            "linear_tree",
            "linear_lambda",
        }
    ),
    "xgboost": frozenset(
        {
            "n_estimators",
            "learning_rate",
            "max_depth",
            "max_leaves",
            "min_child_weight",
            "subsample",
            "colsample_bytree",
            "colsample_bylevel",
            "colsample_bynode",
            "reg_alpha",
            "reg_lambda",
            "gamma",
            "max_delta_step",
            "max_bin",
            "grow_policy",
            "max_cat_to_onehot",
            "max_cat_threshold",
            "scale_pos_weight",
            "tree_method",
            "early_stopping_rounds",
            "nthread",
        }
    ),
    "catboost": frozenset(
        {
            "iterations",
            "learning_rate",
            "depth",
            "l2_leaf_reg",
            "border_count",
            "one_hot_max_size",
            "random_strength",
            "bagging_temperature",
            "bootstrap_type",
            "subsample",
            "rsm",
            "min_data_in_leaf",
            "grow_policy",
            "max_leaves",
            "leaf_estimation_iterations",
            "max_ctr_complexity",
            "auto_class_weights",
            "early_stopping_rounds",
            "thread_count",
        }
    ),
    "river": _RIVER_SHARED | RIVER_TASK_ONLY["classification"] | RIVER_TASK_ONLY["regression"],
    "ensemble": frozenset({"members", "weights", "member_params"}),
    "tabpfn": frozenset(
        {"n_estimators", "max_context_rows", "ignore_pretraining_limits", "device", "weights_path"}
    ),
    # your own scikit-learn estimator (families/sklearn_family.py)
    "sklearn": frozenset({"estimator", "kwargs", "trusted_types"}),
    # logistic regression or ridge on standardised columns (families/linear_family.py)
    "linear": frozenset({"alpha", "max_iter"}),
    # a dense network in PyTorch (families/mlp_family.py, which checks the values)
    "mlp": frozenset(
        {
            "hidden_sizes",
            "dropout",
            "weight_decay",
            "learning_rate",
            "epochs",
            "batch_size",
            "patience",
            "embedding_dim",
            "num_threads",
        }
    ),
    # a recurrent network over each entity's recent rows (families/lstm_family.py)
    "lstm": frozenset(
        {
            "lookback",
            "entity",
            "hidden_size",
            "num_layers",
            "dropout",
            "weight_decay",
            "learning_rate",
            "epochs",
            "batch_size",
            "patience",
            "embedding_dim",
            "history_dropout",
            "num_threads",
        }
    ),
}


def accepted_for(family: str, task: str) -> frozenset[str]:
    """The parameters a ``family`` model of ``task`` accepts.

    >>> "min_samples_split" in accepted_for("river", "classification")
    False
    """
    names = ACCEPTED.get(family, frozenset())
    if family == "river":
        other = "regression" if task == "classification" else "classification"
        names = names - RIVER_TASK_ONLY[other]
    return names


def check_params(family: str, task: str, params: Mapping[str, Any]) -> None:
    """Raise ValueError naming each parameter ``family`` does not accept for ``task``, with
    a did-you-mean and the accepted names. An ensemble's ``member_params`` are checked per
    member family."""
    if family not in ACCEPTED:
        return  # an unknown family is reported on its own
    valid = accepted_for(family, task)
    unknown = sorted(set(params) - valid)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.6)
            if close:
                hints.append(f"did you mean {close[0]!r} for {name!r}?")
        wrong_task = sorted(set(unknown) & ACCEPTED[family])
        other = "regression" if task == "classification" else "classification"
        why = f" ({wrong_task} apply to {other} only; this model does {task})" if wrong_task else ""
        hint = f" ({' '.join(hints)})" if hints else ""
        raise ValueError(
            f"parameter(s) {unknown} are not accepted by the {family!r} family{why}{hint}. "
            f"Accepted: {', '.join(sorted(valid))}"
        )
    if family == "sklearn":
        _check_sklearn(params)
    if family == "ensemble" and isinstance(params.get("member_params"), Mapping):
        for member, member_params in params["member_params"].items():
            if member in ACCEPTED and isinstance(member_params, Mapping):
                try:
                    check_params(member, task, member_params)
                except ValueError as exc:
                    raise ValueError(f"member_params.{member}: {exc}") from None


def _check_sklearn(params: Mapping[str, Any]) -> None:
    """The form of the sklearn family's parameters (importing the estimator waits for
    training: loading a spec runs no user code).

    >>> try:
    ...     _check_sklearn({"estimator": "mypkg:f", "trusted_types": "mypkg.T"})
    ... except ValueError as exc:
    ...     print(str(exc).split(" such")[0])
    trusted_types must be a list of type names
    """
    if params.get("estimator") is not None:
        check_code_path(params["estimator"], "estimator")
    kwargs = params.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ValueError(f"kwargs must be a mapping of argument -> value, got {kwargs!r}")
    trusted = params.get("trusted_types")
    if trusted is not None and (
        not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted)
    ):
        raise ValueError(
            "trusted_types must be a list of type names such as ['mypkg.features.Ratio'], "
            f"got {trusted!r}"
        )


def check_code_path(path: object, setting: str) -> str:
    """``path`` when it has the ``"package.module:name"`` form, else ValueError naming
    ``setting``.

    >>> check_code_path("mypkg.models:make_pipeline", "estimator")
    'mypkg.models:make_pipeline'
    >>> try:
    ...     check_code_path("mypkg.models.make_pipeline", "estimator")
    ... except ValueError as exc:
    ...     print(str(exc).split(" path")[0])
    estimator 'mypkg.models.make_pipeline' is not a 'package.module:name'
    """
    if not isinstance(path, str) or not PATH_RULE.match(path):
        raise ValueError(
            f"{setting} {path!r} is not a 'package.module:name' path such as "
            "'mypkg.models:make_pipeline'"
        )
    return path
