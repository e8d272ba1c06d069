"""Ensemble: the weighted average of member families' class probabilities (classification) or
predictions (regression).

``params = {"members": [...], "weights": [...], "member_params": {family: {...}}}``; weights
default to equal and are normalised. Members share the ensemble's feature schema and classes,
so each handles categoricals and NaN as its own family documents. The ensemble warm-starts
when every member can; a fine-tune fine-tunes each member on the same rows. The payload is a
deterministic zip of the members' own artifacts, in member order. Members run one after the
other, each with the ensemble's ``threads`` (a member's own thread parameter in
``member_params`` wins for that member); setting ``threads`` sets it on every member.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.arange(100.0)})
>>> m = EnsembleModel("regression", ["x"], params={
...     "members": ["randomforest", "lightgbm"], "weights": [3, 1],
...     "member_params": {"randomforest": {"n_estimators": 5, "n_jobs": 1},
...                       "lightgbm": {"n_estimators": 5, "min_data_in_leaf": 5}}})
>>> _ = m.fit(X, X["x"] * 2)
>>> [type(member).__name__ for member in m.members_], m.weights_.tolist()
(['RandomForestModel', 'LightGBMModel'], [0.75, 0.25])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ConfigError, IntegrityError
from ..core.family_params import ACCEPTED
from . import FAMILY_MODULES, family_class, load_model
from .base import Capabilities, FamilyModel, read_zip, write_zip

_NOT_MEMBERS = frozenset({"ensemble"})


class EnsembleModel(FamilyModel):
    name = "ensemble"
    capabilities = Capabilities(warm_start=True)
    default_params: ClassVar[dict[str, Any]] = {"members": ["randomforest", "xgboost"]}
    accepted_params = ACCEPTED["ensemble"]
    payload_name = "members.zip"

    def __init__(
        self,
        task: str,
        numeric: Sequence[str],
        categorical: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        *,
        threads: int | None = None,
    ) -> None:
        super().__init__(task, numeric, categorical, params, seed, threads=threads)
        p = self.effective_params
        self._member_names = _check_members(p["members"])
        self._weights = _check_weights(p.get("weights"), len(self._member_names))
        self._member_params = _check_member_params(p.get("member_params"), self._member_names)
        # Build each member once: this checks its parameters (ConfigError names the bad one)
        # and whether its library is installed (FamilyUnavailableError).
        self.capabilities = _shared(self._new_members())

    @property
    def threads(self) -> int | None:
        return self._threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._threads = value
        for member in self.__dict__.get("members_", ()):
            member.threads = value

    def _new_members(self) -> list[FamilyModel]:
        return [
            family_class(name)(
                self.task,
                self.numeric,
                self.categorical,
                self._member_params.get(name),
                self.seed,
                threads=self.threads,
            )
            for name in self._member_names
        ]

    def _adopt(self, member: FamilyModel) -> FamilyModel:
        member.schema_ = self.schema_
        member.classes_ = list(self.classes_)
        return member

    @classmethod
    def of(cls, members: Sequence[FamilyModel]) -> EnsembleModel:
        """The equal-weight ensemble of ``members``, already fitted on the same columns (and
        classes): what a full retrain's choice blends (``training.choice.blend``) without
        fitting them again. Its params name the members and each one's own params.

        >>> import pandas as pd
        >>> from retrainer.families.linear_family import LinearModel
        >>> from retrainer.families.randomforest import RandomForestModel
        >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
        >>> a = LinearModel("regression", ["x"], params={"alpha": 1e-6}).fit(X, X["x"] * 2)
        >>> b = RandomForestModel("regression", ["x"], params={"n_estimators": 1,
        ...     "bootstrap": False, "n_jobs": 1}).fit(X, X["x"] * 4)
        >>> m = EnsembleModel.of([a, b])
        >>> m.effective_params["members"], m.predict(X).round(2).tolist()
        (['linear', 'randomforest'], [1.0, 2.0, 7.0, 8.0])
        """
        names = [m.name for m in members]
        if not names or len(set(names)) < len(names):
            raise ValueError(f"an ensemble needs members of distinct families; got {names}")
        first = members[0]
        member_params = {m.name: dict(m.params) for m in members}
        params: dict[str, Any] = {"members": names, "member_params": member_params}
        model = cls.__new__(cls)
        FamilyModel.__init__(
            model,
            first.task,
            first.numeric,
            first.categorical,
            {},
            first.seed,
            threads=first.threads,
        )
        model.params = params  # checked by each member's own constructor, already run
        model._member_names = list(params["members"])
        model._weights = np.full(len(members), 1.0 / len(members))
        model._member_params = member_params
        model.capabilities = _shared(members)
        model.schema_ = first.schema_
        model.classes_ = list(first.classes_)
        model.members_ = list(members)
        return model

    @property
    def weights_(self) -> np.ndarray:
        return self._weights

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        self.members_ = [self._adopt(m) for m in self._new_members()]
        for member in self.members_:
            member._fit(X, y, val, weight)

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        for member in self.members_:
            member._fine_tune(X, y, val, learning_rate_factor, rounds)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        outputs = [member.predict_raw(X) for member in self.members_]
        out: np.ndarray = sum(w * o for w, o in zip(self._weights, outputs, strict=True))
        return out

    def _dump(self) -> bytes:
        return write_zip([(f"{i:02d}-{m.name}.zip", m.save()) for i, m in enumerate(self.members_)])

    def _load(self, payload: bytes) -> None:
        entries = read_zip(payload, "ensemble payload").values()
        members = [load_model(data, threads=self.threads) for data in entries]
        names = [m.name for m in members]
        if names != self._member_names:
            raise IntegrityError(
                f"The ensemble artifact holds members {names}, but its params name "
                f"{self._member_names}. The artifact is corrupt; retrain the model."
            )
        self.members_ = members


def _shared(members: Sequence[FamilyModel]) -> Capabilities:
    """What the ensemble of ``members`` can do: what every member can."""
    return Capabilities(
        warm_start=all(m.capabilities.warm_start for m in members),
        handles_missing=all(m.capabilities.handles_missing for m in members),
        sample_weight=all(m.capabilities.sample_weight for m in members),
    )


def _check_members(members: Any) -> list[str]:
    valid = sorted(set(FAMILY_MODULES) - _NOT_MEMBERS)
    if (
        not isinstance(members, list | tuple)
        or not members
        or not all(isinstance(m, str) for m in members)
    ):
        raise ConfigError(
            f"The 'members' parameter of the 'ensemble' family must be a non-empty list of "
            f"family names; got {members!r}. Valid members: {', '.join(valid)}.",
            param="members",
        )
    unknown = [m for m in members if m not in valid]
    if unknown:
        raise ConfigError(
            f"Unknown ensemble member family(ies) {unknown} in 'members'. "
            f"Valid members: {', '.join(valid)}.",
            param="members",
            members=unknown,
        )
    dupes = sorted({m for m in members if members.count(m) > 1})
    if dupes:
        raise ConfigError(
            f"Ensemble member(s) {dupes} appear more than once in 'members'; list each family "
            "once and use 'weights' to give it more say.",
            param="members",
        )
    return list(members)


def _check_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    ok = isinstance(weights, list | tuple) and all(
        isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w > 0
        for w in weights
    )
    if not ok or len(weights) != n:
        raise ConfigError(
            f"The 'weights' parameter of the 'ensemble' family must list {n} positive "
            f"number(s), one per member; got {weights!r}. Fix the list or drop it for equal "
            "weights.",
            param="weights",
        )
    w = np.asarray(weights, dtype=np.float64)
    normalised: np.ndarray = w / w.sum()
    return normalised


def _check_member_params(member_params: Any, members: list[str]) -> dict[str, dict[str, Any]]:
    if member_params is None:
        return {}
    if not isinstance(member_params, Mapping) or not all(
        isinstance(v, Mapping) for v in member_params.values()
    ):
        raise ConfigError(
            "The 'member_params' parameter of the 'ensemble' family must map a member family "
            f"to its params, e.g. {{'xgboost': {{'n_estimators': 100}}}}; got {member_params!r}.",
            param="member_params",
        )
    stray = sorted(set(member_params) - set(members))
    if stray:
        raise ConfigError(
            f"'member_params' names {stray}, which are not ensemble members. "
            f"Members: {', '.join(members)}; add them to 'members' or drop their params.",
            param="member_params",
        )
    return {k: dict(v) for k, v in member_params.items()}
