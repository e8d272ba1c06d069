"""A scheduled job of a fleet entry: the job once for every member, recorded as one run.

The fleet's ``schedule`` is its members' schedule. A maintain runs every member through
:func:`~retrainer.lifecycle.fleet_maintain.maintain_many` (on the fleet's Dask scheduler when
``training.engine`` is dask, else one after another); a full retrain or fine-tune runs each
member as the job of a single model would. The run in ``job_runs`` is the fleet's (one per
scheduled time, so a replica that comes second still skips it): its outcome is ``failed`` when
any member failed, ``skipped`` when every member was skipped, else ``ok``; its detail counts
the members by outcome and action and names the failed and skipped ones (each member's own
decision is stored with it, as for any maintain).

>>> summary([("f.a", "ok", "nothing: kept 1.0.0"), ("f.b", "failed", "training_failed: x")])
('failed', '2 members: 1 ok (1 nothing), 1 failed; failed: f.b (training_failed: x)')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..core.errors import LeaseHeld
from ..lifecycle.fleet_maintain import Maintained, Options, maintain_many
from ..plumbing.workspace import Workspace

NAMED = 5  # failed or skipped members named in a run's detail; the rest counted

Execute = Callable[[Workspace, str, str, str], tuple[str, str]]


def run_fleet_job(
    ws: Workspace, job: str, fleet: str, owner: str, execute: Execute
) -> tuple[str, str]:
    """(outcome, detail) of scheduled ``job`` over every member of ``fleet``; ``execute``
    runs a job of one model (the scheduler's own)."""
    members = ws.members(fleet)
    if not members:
        return "skipped", (
            f"fleet {fleet!r} has no members yet (each comes with its first rows: "
            f"`retrainer ingest {fleet} FILE`)"
        )
    if job == "maintain":
        done = maintain_many(ws, members, options=Options(triggered_by="schedule"))
        return summary([_member_outcome(m) for m in done])
    return summary([(m, *execute(ws, job, m, owner)) for m in members])


def _member_outcome(m: Maintained) -> tuple[str, str, str]:
    if isinstance(m.error, LeaseHeld):
        return m.model, "skipped", f"model lease held: {m.error.message}"
    if m.error is not None or m.result is None:
        code = m.error.code if m.error else "retrainer_error"
        return m.model, "failed", f"{code}: {m.error.message if m.error else 'no result'}"
    d = m.result.decision
    return m.model, "failed" if m.result.failed else "ok", f"{d.action}: {d.outcome or ''}"


def summary(results: list[tuple[str, str, str]]) -> tuple[str, str]:
    """The fleet run's outcome and detail from each member's (name, outcome, detail)."""
    by = Counter(outcome for _, outcome, _ in results)
    actions = Counter(detail.split(":", 1)[0] for _, outcome, detail in results if outcome == "ok")
    parts = []
    for outcome in ("ok", "skipped", "failed"):
        if by[outcome]:
            kinds = ", ".join(f"{n} {a}" for a, n in actions.most_common())
            parts.append(f"{by[outcome]} {outcome}" + (f" ({kinds})" if outcome == "ok" else ""))
    detail = f"{len(results)} members: " + ", ".join(parts)
    for outcome in ("failed", "skipped"):
        named = [(n, d) for n, o, d in results if o == outcome]
        if named:
            listed = "; ".join(f"{n} ({d.splitlines()[0][:160]})" for n, d in named[:NAMED])
            more = f"; and {len(named) - NAMED} more" if len(named) > NAMED else ""
            detail += f"; {outcome}: {listed}{more}"
    if by["failed"]:
        return "failed", detail
    return ("skipped" if by["skipped"] == len(results) else "ok"), detail
