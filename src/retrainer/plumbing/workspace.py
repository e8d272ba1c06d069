"""A workspace: the spec, the store and the artifact store, opened together.

Model families and alerting are imported on first use (``load``, ``alert``), so opening a
workspace to read the registry (``retrainer status``) loads no model library.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.entities import ModelVersion
from ..core.spec import ModelSpec, Spec, load_spec
from ..store import ArtifactStore, SqlStore
from ..store.artifacts import signing_key_from_env

if TYPE_CHECKING:
    from ..alerts import Alerter
    from ..families import FamilyModel


class Workspace:
    """Everything an operation needs. Open one per process and close it when done.

    >>> from retrainer.core.spec import parse_spec
    >>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://ws", "models": {"m": {
    ...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
    ...     "features": {"numeric": ["x"]}}}}, environ={})
    >>> with Workspace(spec) as ws:
    ...     ws.store.list_models()
    []
    """

    def __init__(
        self,
        spec: Spec,
        store: SqlStore | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.spec = spec
        self.store = store or SqlStore(spec.store)
        self.artifacts = artifacts or ArtifactStore(spec.artifacts, signing_key_from_env())
        self._cache: dict[tuple[str, str], FamilyModel] = {}
        self._classes: dict[tuple[str, str, str], list[Any]] = {}
        self._alerters: dict[str, Alerter] = {}

    @classmethod
    def open(cls, config: str | Path | None = None) -> Workspace:
        return cls(load_spec(config))

    def model_spec(self, name: str) -> ModelSpec:
        return self.spec.model(name)

    def members(self, fleet: str) -> list[str]:
        """The members of fleet ``fleet`` the store knows (each came with its first rows)."""
        from ..core.fleet import member_prefix

        return self.store.list_members(member_prefix(fleet))

    def model_names(self) -> list[str]:
        """Every model in the spec's order: its entries, a fleet's members (sorted) in place of
        the fleet.

        >>> from retrainer.core.spec import parse_spec
        >>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://ws", "models": {
        ...     "m": {"task": "regression", "target": "y", "id_column": "id",
        ...           "time_column": "t", "features": {"numeric": ["x"]}}}}, environ={})
        >>> with Workspace(spec) as ws:
        ...     ws.model_names()
        ['m']
        """
        names: list[str] = []
        for name, spec in self.spec.models.items():
            names.extend(self.members(name) if spec.is_fleet else [name])
        return names

    def artifact_bytes(self, version: ModelVersion) -> bytes:
        """Verified bytes of a version's artifact (IntegrityError when they do not match)."""
        return self.artifacts.get(
            version.artifact_uri,
            version.sha256,
            version.hmac,
            what=f"model {version.model!r} version {version.version}",
        )

    def load(self, model: str, version: str) -> FamilyModel:
        """The fitted model of a version, verified, cached per process."""
        key = (model, version)
        if key not in self._cache:
            from ..families import load_model

            v = self.store.get_version(model, version)
            self._cache[key] = load_model(self.artifact_bytes(v))
        return self._cache[key]

    def classes(self, model: str, version: str) -> list[Any]:
        """A classifier version's class labels, from its verified artifact's metadata, without
        loading the model (nor importing its family's library). Empty for a regression."""
        if (model, version) in self._cache:
            return list(self._cache[(model, version)].classes_)
        key = ("classes", model, version)
        if key not in self._classes:
            from ..families.base import read_artifact

            v = self.store.get_version(model, version)
            meta, _payload = read_artifact(self.artifact_bytes(v))
            self._classes[key] = list(meta.get("classes", []))
        return list(self._classes[key])

    def forget(self, model: str) -> None:
        """Drop what this workspace cached of ``model`` (its loaded versions, class labels and
        alerter): a worker that maintains a thousand fleet members one after another keeps
        none of them (0.2 MB each) once its turn is done."""
        for key in [k for k in self._cache if k[0] == model]:
            del self._cache[key]
        for ckey in [k for k in self._classes if k[1] == model]:
            del self._classes[ckey]
        alerter = self._alerters.pop(model, None)
        if alerter is not None:
            alerter.close(timeout=5)

    def alert(self, model: str, event: str, title: str, text: str = "", **fields: Any) -> None:
        """Send an alert for ``model`` (never blocks, never raises; see alerts.Alerter)."""
        from ..alerts import Alert, Alerter

        if model not in self._alerters:
            self._alerters[model] = Alerter(self.model_spec(model).alerts)
        self._alerters[model].send(Alert(event, model, title, text, fields))  # type: ignore[arg-type]

    def close(self) -> None:
        for alerter in self._alerters.values():
            alerter.close(timeout=5)
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
