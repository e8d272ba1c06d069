"""Registry operations: versions, roles and the deployment log, each change one transaction."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from ..core.clock import utcnow
from ..core.entities import (
    Bump,
    Challenger,
    DeploymentEvent,
    ModelOverview,
    ModelVersion,
    Roles,
    SemVer,
)
from ..core.errors import ConflictError, VersionNotFound
from . import schema as t
from .base import StoreBase
from .convert import event_from_row, jsonsafe, roles_from_row, version_from_row, version_to_row

CHAMPION_ACTIONS = ("deploy", "promote", "rollback")


class RegistryStore(StoreBase):
    # ---- reads --------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        with self.read() as conn:
            return [r[0] for r in conn.execute(select(t.models.c.name).order_by(t.models.c.name))]

    def list_members(self, prefix: str) -> list[str]:
        """The stored model names that start with ``prefix`` (a fleet's members), sorted."""
        c = t.models.c.name
        q = select(c).where(c.startswith(prefix, autoescape=True)).order_by(c)
        with self.read() as conn:
            return [r[0] for r in conn.execute(q)]

    def overview(self, names: list[str]) -> list[ModelOverview]:
        """Roles, live version count and training rows of each of ``names``, in three
        queries whatever their number (``status`` of a fleet's thousand members)."""
        wanted = set(names)
        v, s = t.versions.c, t.segments.c
        with self.read() as conn:
            roles = {
                r.model: roles_from_row(r.model, r)
                for r in conn.execute(select(t.roles))
                if r.model in wanted
            }
            counts: dict[str, int] = dict(
                conn.execute(  # type: ignore[arg-type]
                    select(v.model, func.count()).where(v.status != "deleted").group_by(v.model)
                ).all()
            )
            rows: dict[str, int] = dict(
                conn.execute(  # type: ignore[arg-type]
                    select(s.model, func.sum(s.n_rows)).where(s.kind == "rows").group_by(s.model)
                ).all()
            )
        return [
            ModelOverview(
                roles.get(n) or Roles(n, None, None), int(counts.get(n, 0)), int(rows.get(n) or 0)
            )
            for n in names
        ]

    def list_versions(self, model: str, *, include_deleted: bool = True) -> list[ModelVersion]:
        q = select(t.versions).where(t.versions.c.model == model)
        if not include_deleted:
            q = q.where(t.versions.c.status != "deleted")
        q = q.order_by(t.versions.c.major, t.versions.c.minor, t.versions.c.patch)
        with self.read() as conn:
            return [version_from_row(r) for r in conn.execute(q)]

    def get_version(self, model: str, version: str, conn: Connection | None = None) -> ModelVersion:
        q = select(t.versions).where(t.versions.c.model == model, t.versions.c.version == version)
        if conn is None:
            with self.read() as c:
                row = c.execute(q).first()
        else:
            row = conn.execute(q).first()
        if row is None:
            known = [v.version for v in self.list_versions(model)] if conn is None else []
            raise VersionNotFound(
                f"Model {model!r} has no version {version}. "
                f"Known versions: {', '.join(known) or '(none yet; run `retrainer train`)'}.",
                model=model,
                version=version,
            )
        return version_from_row(row)

    def roles(self, model: str, conn: Connection | None = None) -> Roles:
        q = select(t.roles).where(t.roles.c.model == model)
        if conn is not None:
            return roles_from_row(model, conn.execute(q).first())
        with self.read() as c:
            return roles_from_row(model, c.execute(q).first())

    def roles_revision(self, model: str) -> int:
        """A counter that changes with every role change (cheap polling for hot reload)."""
        with self.read() as conn:
            rev = conn.execute(select(t.roles.c.revision).where(t.roles.c.model == model)).scalar()
        return int(rev or 0)

    def member_roles(self, prefix: str) -> dict[str, tuple[int, Roles]]:
        """The roles revision and roles of every stored model named ``prefix…`` (a fleet's
        members), in one query: the hot-reload poll of a thousand members is one round trip.

        >>> from retrainer.store import SqlStore
        >>> SqlStore("sqlite://").member_roles("sales.")
        {}
        """
        q = select(t.roles).where(t.roles.c.model.startswith(prefix, autoescape=True))
        with self.read() as conn:
            return {
                str(r.model): (int(r.revision or 0), roles_from_row(str(r.model), r))
                for r in conn.execute(q)
            }

    def events(self, model: str, limit: int | None = None) -> list[DeploymentEvent]:
        q = select(t.deployments).where(t.deployments.c.model == model)
        q = q.order_by(t.deployments.c.id.desc() if limit else t.deployments.c.id)
        if limit:
            q = q.limit(limit)
        with self.read() as conn:
            rows = [event_from_row(r) for r in conn.execute(q)]
        return list(reversed(rows)) if limit else rows

    def champion_stack(self, model: str, conn: Connection | None = None) -> list[str]:
        """Champions in order, as deploys push and rollbacks pop them (derived from the log)."""
        q = (
            select(t.deployments.c.action, t.deployments.c.to_version)
            .where(t.deployments.c.model == model, t.deployments.c.action.in_(CHAMPION_ACTIONS))
            .order_by(t.deployments.c.id)
        )
        if conn is None:
            with self.read() as c:
                rows = list(c.execute(q))
        else:
            rows = list(conn.execute(q))
        stack: list[str] = []
        for action, to in rows:
            if action == "rollback" and to in stack:
                del stack[stack.index(to) + 1 :]
            elif action == "rollback" and stack:
                stack[-1] = to
            else:
                stack.append(to)
        return stack

    # ---- writes -------------------------------------------------------------------------
    def _next_version(self, conn: Connection, model: str, bump: Bump, parent: str | None) -> str:
        v = t.versions.c
        if bump == "major" or parent is None:
            top = conn.execute(select(func.max(v.major)).where(v.model == model)).scalar()
            return "1.0.0" if top is None else str(SemVer(int(top) + 1, 0, 0))
        base = SemVer.parse(parent)
        if bump == "minor":
            top = conn.execute(
                select(func.max(v.minor)).where(v.model == model, v.major == base.major)
            ).scalar()
            return str(SemVer(base.major, int(top or 0) + 1, 0))
        top = conn.execute(
            select(func.max(v.patch)).where(
                v.model == model, v.major == base.major, v.minor == base.minor
            )
        ).scalar()
        return str(SemVer(base.major, base.minor, int(top or 0) + 1))

    def register(
        self,
        draft: ModelVersion,
        bump: Bump,
        *,
        deploy: bool = False,
        challenger: tuple[str, float] | None = None,
        reason: str = "",
        triggered_by: str = "manual",
        gate: dict[str, Any] | None = None,
        forced: bool = False,
        expect_champion: str | bool | None = False,
        decision: tuple[int, str] | None = None,
    ) -> ModelVersion:
        """Number, insert and optionally deploy a version, all in one transaction.

        ``expect_champion`` (the champion the version was gated against) is compared with the
        champion under the model's lock: when another writer moved it meanwhile, the version
        is registered without a role (``details["stale_gate"]`` says against what it was
        gated) instead of deployed on a gate that no longer holds. ``decision`` (id, outcome):
        a stored maintenance decision whose outcome is set in the same transaction, so a crash
        after it never leaves a version no decision names."""
        with self.write(draft.model) as conn:
            number = self._next_version(conn, draft.model, bump, draft.parent)
            wants_role = deploy or challenger is not None
            current = self.roles(draft.model, conn).champion
            if wants_role and expect_champion is not False and current != expect_champion:
                details = {
                    **draft.details,
                    "deployed": False,
                    "stale_gate": {"gated_against": expect_champion, "champion": current},
                }
                details.pop("challenger", None)
                draft = dataclasses.replace(draft, details=details)
                deploy, challenger = False, None
            version = dataclasses.replace(draft, version=number)
            conn.execute(t.versions.insert().values(**version_to_row(version)))
            if decision is not None:
                conn.execute(
                    update(t.decisions)
                    .where(t.decisions.c.id == decision[0])
                    .values(outcome=decision[1].format(version=number))
                )
            if deploy:
                self._move_champion(
                    conn,
                    draft.model,
                    number,
                    "deploy",
                    reason or draft.reason,
                    triggered_by,
                    forced=forced,
                    gate=gate,
                )
            elif challenger is not None:
                self._set_challenger(
                    conn,
                    draft.model,
                    number,
                    challenger[0],
                    challenger[1],
                    reason or draft.reason,
                    triggered_by,
                    gate=gate,
                )
            return version

    def move_champion(
        self,
        model: str,
        to_version: str,
        action: str,
        reason: str,
        triggered_by: str,
        *,
        forced: bool = False,
        gate: dict[str, Any] | None = None,
        expect_champion: str | bool | None = False,
    ) -> DeploymentEvent:
        """Make ``to_version`` champion and log it; ``expect_champion`` guards against races."""
        with self.write(model) as conn:
            if expect_champion is not False:
                current = self.roles(model, conn).champion
                if current != expect_champion:
                    raise ConflictError(
                        f"Model {model!r}: the champion changed to {current} meanwhile "
                        f"(expected {expect_champion}). Re-read the status and retry."
                    )
            return self._move_champion(
                conn, model, to_version, action, reason, triggered_by, forced=forced, gate=gate
            )

    def set_challenger(
        self,
        model: str,
        version: str | None,
        mode: str | None,
        fraction: float | None,
        reason: str,
        triggered_by: str,
        *,
        step: int = 0,
        action: str | None = None,
        gate: dict[str, Any] | None = None,
    ) -> DeploymentEvent:
        with self.write(model) as conn:
            if version is not None:
                self.get_version(model, version, conn)
            return self._set_challenger(
                conn,
                model,
                version,
                mode,
                fraction,
                reason,
                triggered_by,
                step=step,
                action=action,
                gate=gate,
            )

    def retire(
        self, model: str, keep_newest: int, reason: str, by: str
    ) -> tuple[list[ModelVersion], set[str]]:
        """Mark deleted every live version but the newest ``keep_newest`` and the protected
        ones (champion, challenger, previous champion), deciding under the model's lock so a
        deploy or rollback can never point at a version this marks. Returns the versions
        marked and the artifact URIs live versions still use: delete the others' files only
        after this returns (committed), never before."""
        with self.write(model) as conn:
            live = [
                version_from_row(r)
                for r in conn.execute(
                    select(t.versions).where(
                        t.versions.c.model == model, t.versions.c.status != "deleted"
                    )
                )
            ]
            newest = sorted(live, key=lambda v: (v.created_at, v.semver))[-keep_newest:]
            keep = {v.version for v in newest} | self._protected(conn, model)
            doomed = [v for v in live if v.version not in keep]
            if doomed:
                conn.execute(
                    update(t.versions)
                    .where(
                        t.versions.c.model == model,
                        t.versions.c.version.in_([v.version for v in doomed]),
                    )
                    .values(status="deleted")
                )
            for v in doomed:
                self._event(conn, model, "delete", v.version, None, reason, by)
            kept_uris = {v.artifact_uri for v in live if v.version in keep}
        return doomed, kept_uris

    def _protected(self, conn: Connection, model: str) -> set[str]:
        """Versions retention keeps whatever their age: champion, challenger, previous
        champion."""
        roles = self.roles(model, conn)
        keep = {roles.champion} if roles.champion else set()
        if roles.challenger:
            keep.add(roles.challenger.version)
        stack = self.champion_stack(model, conn)
        if len(stack) >= 2:
            keep.add(stack[-2])
        return keep

    def sign_version(self, model: str, version: str, sha256: str, hmac: str) -> bool:
        """Record ``hmac`` for an unsigned live version whose artifact hash is still
        ``sha256``; False when the row changed meanwhile (signed, deleted or re-pointed)."""
        with self.write(model) as conn:
            done = conn.execute(
                update(t.versions)
                .where(
                    t.versions.c.model == model,
                    t.versions.c.version == version,
                    t.versions.c.sha256 == sha256,
                    t.versions.c.hmac.is_(None),
                    t.versions.c.status != "deleted",
                )
                .values(hmac=hmac)
            )
            return bool(done.rowcount == 1)

    # ---- helpers inside a transaction ---------------------------------------------------
    def _live(self, conn: Connection, model: str, version: str) -> ModelVersion:
        """``version`` as stored now, refused when retention deleted it. Called under the
        model's lock (every registry write takes it), so retention cannot mark it between
        this check and the role change that follows."""
        found = self.get_version(model, version, conn)
        if found.status == "deleted":
            raise ConflictError(
                f"Model {model!r} version {version} was deleted by retention; its artifact is "
                "gone, so no role may point at it. Pick a version `retrainer versions` lists "
                "as kept.",
                model=model,
                version=version,
            )
        return found

    def _event(self, conn: Connection, *args: Any, **kwargs: Any) -> DeploymentEvent:
        """An event in ``conn``'s transaction (see :func:`add_event`)."""
        return add_event(conn, *args, **kwargs)

    def _move_champion(
        self,
        conn: Connection,
        model: str,
        to_version: str,
        action: str,
        reason: str,
        by: str,
        *,
        forced: bool = False,
        gate: dict[str, Any] | None = None,
    ) -> DeploymentEvent:
        self._live(conn, model, to_version)
        roles = self.roles(model, conn)
        now = utcnow()
        values: dict[str, Any] = {
            "champion": to_version,
            "champion_since": now,
            "revision": t.roles.c.revision + 1,
        }
        if roles.challenger is not None and roles.challenger.version == to_version:
            values.update(
                challenger=None,
                challenger_mode=None,
                challenger_fraction=None,
                challenger_started=None,
                challenger_step=0,
            )
        conn.execute(update(t.roles).where(t.roles.c.model == model).values(**values))
        return self._event(
            conn,
            model,
            action,
            roles.champion,
            to_version,
            reason,
            by,
            forced=forced,
            gate=gate,
            at=now,
        )

    def _set_challenger(
        self,
        conn: Connection,
        model: str,
        version: str | None,
        mode: str | None,
        fraction: float | None,
        reason: str,
        by: str,
        *,
        step: int = 0,
        action: str | None = None,
        gate: dict[str, Any] | None = None,
    ) -> DeploymentEvent:
        if version is not None:
            self._live(conn, model, version)
        roles = self.roles(model, conn)
        old = roles.challenger.version if roles.challenger else None
        started = roles.challenger.started_at if roles.challenger and old == version else utcnow()
        conn.execute(
            update(t.roles)
            .where(t.roles.c.model == model)
            .values(
                challenger=version,
                challenger_mode=mode if version else None,
                challenger_fraction=fraction if version else None,
                challenger_started=started if version else None,
                challenger_step=step,
                revision=t.roles.c.revision + 1,
            )
        )
        act = action or ("start_challenger" if version else "stop_challenger")
        return self._event(conn, model, act, old, version, reason, by, gate=gate)


def role_of(version: ModelVersion, roles: Roles) -> str:
    """The role a version plays now: champion, challenger, archived or deleted."""
    if version.status == "deleted":
        return "deleted"
    if roles.champion == version.version:
        return "champion"
    if roles.challenger is not None and roles.challenger.version == version.version:
        return "challenger"
    return "archived"


__all__ = ["Challenger", "RegistryStore", "role_of"]


def add_event(
    conn: Connection,
    model: str,
    action: str,
    from_v: str | None,
    to_v: str | None,
    reason: str,
    by: str,
    *,
    forced: bool = False,
    gate: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> DeploymentEvent:
    """Append an event to a model's history, in the caller's transaction."""
    now = at or utcnow()
    row = {
        "model": model,
        "action": action,
        "from_version": from_v,
        "to_version": to_v,
        "reason": reason,
        "triggered_by": by,
        "forced": forced,
        "gate": jsonsafe(gate) if gate is not None else None,
        "created_at": now,
    }
    key = conn.execute(t.deployments.insert().values(**row)).inserted_primary_key
    assert key is not None
    return event_from_row(type("R", (), {**row, "id": key[0]}))
