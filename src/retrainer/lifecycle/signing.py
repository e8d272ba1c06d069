"""Sign the versions made before ``RETRAINER_SIGNING_KEY`` was set (``retrainer sign``).

With a key set, every load requires a valid signature, so a version trained without the key
does not load until it is signed. Signing is trust on first use: it attests that the artifact
files as they are now are yours. Each unsigned live version's file must still match its
recorded SHA-256 and load as a model of its family (River through the restricted
unpickler) before its HMAC is recorded; a version already signed is checked against the key
and reported when it fails (signing never overwrites a signature). Sign right after turning
the key on, before anyone else could have written the store or the artifact folder; when in
doubt, retrain instead.

>>> from retrainer.core.spec import parse_spec
>>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://sign", "models": {"m": {
...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
...     "features": {"numeric": ["x"]}}}}, environ={})
>>> from retrainer.store import ArtifactStore
>>> with Workspace(spec, artifacts=ArtifactStore("memory://sign", b"key")) as ws:
...     sign_versions(ws, "m")
SignResult(model='m', signed=[], verified=[], refused={})
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import ConfigError, IntegrityError, RetrainerError
from ..core.fleet import check_single
from ..core.names import check_version
from ..plumbing.workspace import Workspace


@dataclass(frozen=True)
class SignResult:
    """What ``sign`` did: versions signed now, already signed with this key, refused (with
    the reason)."""

    model: str
    signed: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """IntegrityError naming every refused version (after the others were signed)."""
        if self.refused:
            lines = "; ".join(f"{v}: {why}" for v, why in self.refused.items())
            raise IntegrityError(
                f"{len(self.refused)} version(s) of {self.model!r} were not signed: {lines}"
            )


def sign_versions(ws: Workspace, model: str, versions: list[str] | None = None) -> SignResult:
    """Sign ``model``'s unsigned live versions (or only ``versions``) with the key; check the
    signed ones. ConfigError when no key is set."""
    from ..families import load_model

    check_single(ws.model_spec(model), "sign")
    if ws.artifacts.signing_key is None:
        raise ConfigError(
            "retrainer sign: RETRAINER_SIGNING_KEY is not set. Set it to the key every "
            "artifact should be signed with, then run `retrainer sign` again."
        )
    wanted = {check_version(v, where="retrainer sign") for v in versions or []}
    result = SignResult(model)
    live = {v.version: v for v in ws.store.list_versions(model, include_deleted=False)}
    for name in sorted(wanted - live.keys()):
        result.refused[name] = "no such live version (deleted, or never registered)"
    for v in live.values():
        if wanted and v.version not in wanted:
            continue
        what = f"model {model!r} version {v.version}"
        try:
            data = ws.artifacts.get(
                v.artifact_uri, v.sha256, v.hmac, what=what, allow_unsigned=True
            )
            if v.hmac is not None:
                result.verified.append(v.version)
                continue
            load_model(data)
        except RetrainerError as exc:
            result.refused[v.version] = exc.message
            continue
        except Exception as exc:  # a file that is no model of its family: never signed
            result.refused[v.version] = f"it does not load ({type(exc).__name__}: {exc})"
            continue
        if ws.store.sign_version(model, v.version, v.sha256, ws.artifacts.sign(data)):
            result.signed.append(v.version)
        else:
            result.refused[v.version] = "its registry row changed while it was being signed"
    return result
