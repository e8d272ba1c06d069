"""Many fleet members quickly, for the serving tests and the bench: one member trained for
real, its champion registered again (the same artifact bytes) as the champion of every other
member, in one store transaction of a few statements: no training and no query per member."""

from __future__ import annotations

import dataclasses

from sqlalchemy import update

from retrainer.core.clock import utcnow
from retrainer.core.fleet import member_name
from retrainer.plumbing.workspace import Workspace
from retrainer.store import schema as t
from retrainer.store.convert import version_to_row


def register_members(ws: Workspace, fleet: str, template: str, entities: list[str]) -> list[str]:
    """Make each of ``entities`` a member of ``fleet`` whose champion 1.0.0 is ``template``'s
    champion (the same artifact); returns the member names."""
    champion = ws.store.roles(template).champion
    assert champion is not None, f"{template} needs a champion to copy"
    version = ws.store.get_version(template, champion)
    names = [member_name(fleet, e) for e in entities]
    rows = [
        version_to_row(dataclasses.replace(version, model=n, version="1.0.0", parent=None))
        for n in names
    ]
    now = utcnow()
    events = [
        {"model": n, "action": "deploy", "from_version": None, "to_version": "1.0.0",
         "reason": "a test fleet", "triggered_by": "manual", "forced": False, "gate": None,
         "created_at": now}
        for n in names
    ]  # fmt: skip
    with ws.store.write_models(names) as conn:  # the models and roles rows of each member
        conn.execute(t.versions.insert(), rows)
        conn.execute(t.deployments.insert(), events)
        conn.execute(
            update(t.roles)
            .where(t.roles.c.model.in_(names))
            .values(champion="1.0.0", champion_since=now, revision=t.roles.c.revision + 1)
        )
    return names
