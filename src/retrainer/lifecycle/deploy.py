"""Deploy, rollback and retention: each a single registry transaction with an event."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.entities import DeploymentEvent, ModelVersion
from ..core.errors import ConflictError, NoChampion, RetrainerError
from ..core.fleet import check_single
from ..evaluation.gate import GateRecord, Verdict, stored_gate
from ..plumbing.workspace import Workspace
from ..store import role_of


def verify_loadable(ws: Workspace, version: ModelVersion) -> None:
    """Check the artifact's hash/HMAC and that it loads, before any role points at it.

    Retention may delete the version meanwhile: a file that fails to read is then reported
    as the deleted version it is (a ConflictError), not as a missing file. The role change
    itself checks the status again under the model's lock (``RegistryStore._live``)."""
    if version.status == "deleted":
        raise _deleted(version)
    from ..families import load_model  # the family's library, only when a model is loaded

    try:
        data = ws.artifact_bytes(version)
    except RetrainerError:
        if ws.store.get_version(version.model, version.version).status == "deleted":
            raise _deleted(version) from None
        raise
    load_model(data)


def _deleted(version: ModelVersion) -> ConflictError:
    return ConflictError(
        f"Model {version.model!r} version {version.version} was deleted by retention; its "
        "artifact is gone. Pick a version that `retrainer versions` lists as kept.",
        model=version.model,
        version=version.version,
    )


def deploy(
    ws: Workspace,
    model: str,
    version: str,
    *,
    reason: str = "manual deploy",
    triggered_by: str = "manual",
    forced: bool = False,
    gate: GateRecord | None = None,
) -> DeploymentEvent:
    """Make ``version`` the champion (verified first). ``gate``: the verdict that allows it;
    by default the version's own gate when it was judged against the current champion."""
    check_single(ws.model_spec(model), "deploy and rollback")
    v = ws.store.get_version(model, version)
    verify_loadable(ws, v)
    current = ws.store.roles(model).champion
    if current == version:
        raise ConflictError(f"Model {model!r}: version {version} is already the champion.")
    own = stored_gate(v.details)
    if gate is None and own is not None and own.champion_version == current:
        gate = own
    if gate is not None and gate.verdict is Verdict.REJECT and not forced:
        reasons = "; ".join(gate.reasons)
        raise ConflictError(
            f"Model {model!r}: the gate rejected version {version} against champion "
            f"{current}: {reasons}. Deploy anyway with --force (recorded as forced)."
        )
    event = ws.store.move_champion(
        model,
        version,
        "deploy",
        reason,
        triggered_by,
        forced=forced,
        gate=None if gate is None else gate.to_dict(),
        expect_champion=current,
    )
    title = f"deployed {version}" + (" (forced past the gate)" if forced else "")
    ws.alert(model, "deploy", title, reason, by=triggered_by, previous=current)
    return event


def rollback_target(ws: Workspace, model: str) -> str:
    roles = ws.store.roles(model)
    if roles.champion is None:
        raise NoChampion(f"Model {model!r} has no champion, so there is nothing to roll back.")
    stack = ws.store.champion_stack(model)
    if len(stack) < 2:
        raise ConflictError(
            f"Model {model!r} has no previous champion to roll back to (the champion "
            f"{roles.champion} is the first). Use `retrainer rollback {model} --to VERSION` "
            "or deploy another version."
        )
    return stack[-2]


def rollback(
    ws: Workspace,
    model: str,
    *,
    to: str | None = None,
    reason: str = "manual rollback",
    triggered_by: str = "manual",
) -> DeploymentEvent:
    """Return to the previous champion (or ``to``), verified first."""
    check_single(ws.model_spec(model), "deploy and rollback")
    target = to or rollback_target(ws, model)
    current = ws.store.roles(model).champion
    if current is None:
        raise NoChampion(f"Model {model!r} has no champion, so there is nothing to roll back.")
    if target == current:
        raise ConflictError(f"Model {model!r}: version {target} is already the champion.")
    verify_loadable(ws, ws.store.get_version(model, target))
    event = ws.store.move_champion(
        model, target, "rollback", reason, triggered_by, expect_champion=current
    )
    ws.alert(model, "rollback", f"rolled back {current} → {target}", reason, by=triggered_by)
    return event


def apply_retention(ws: Workspace, model: str) -> list[str]:
    """Keep the newest ``retention.keep`` versions plus champion, previous champion and
    challenger; mark the others deleted (numbers stay taken), then delete their artifacts.

    The choice and the marking are one transaction under the model's lock, which every role
    change also takes, so a concurrent deploy either made its version champion first (kept)
    or finds it deleted (a ConflictError). Files go only after that commit, and only those
    no live version shares."""
    spec = check_single(ws.model_spec(model), "deploy and rollback")
    doomed, kept_uris = ws.store.retire(model, spec.retention.keep, "retention", "retention")
    for v in doomed:
        if v.artifact_uri not in kept_uris:
            ws.artifacts.delete(v.artifact_uri)
    return [v.version for v in doomed]


@dataclass(frozen=True)
class VersionRow:
    version: ModelVersion
    role: str


def versions_with_roles(ws: Workspace, model: str) -> list[VersionRow]:
    check_single(ws.model_spec(model), "deploy and rollback")
    roles = ws.store.roles(model)
    return [VersionRow(v, role_of(v, roles)) for v in ws.store.list_versions(model)]
