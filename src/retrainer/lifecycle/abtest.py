"""`abtest`: each arm's live metric since the challenger went on traffic, with a
significance test and a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.clock import utcnow
from ..core.errors import ConflictError
from ..core.fleet import check_single
from ..evaluation.arms import ArmComparison
from ..plumbing.workspace import Workspace
from .rollout import arms, significance, step_started


@dataclass(frozen=True)
class ABReport:
    model: str
    champion: str
    challenger: str
    mode: str
    fraction: float
    since: datetime
    arms: list[dict[str, Any]]
    comparison: dict[str, Any] | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "since": self.since.isoformat()}


def ab_report(ws: Workspace, model: str, now: datetime | None = None) -> ABReport:
    check_single(ws.model_spec(model), "an A/B test")
    roles = ws.store.roles(model)
    ch = roles.challenger
    if ch is None or roles.champion is None:
        raise ConflictError(
            f"Model {model!r} has no challenger on traffic, so there is no A/B test to report. "
            "Set `rollout: {mode: ab}` in the spec; `maintain` starts one when a challenger "
            "passes the gate."
        )
    now = now or utcnow()
    since = ch.started_at if ch.mode == "ab" else step_started(ws, model, ch)
    report, cmp, _ = arms(ws, model, ch, since, now)
    rows = [v.to_dict() for v in report.versions if v.version in (roles.champion, ch.version)]
    verdict = "not enough labelled predictions yet" if cmp is None else _verdict(ch.version, cmp)
    return ABReport(
        model,
        roles.champion,
        ch.version,
        ch.mode,
        ch.fraction,
        since,
        rows,
        None if cmp is None else cmp.to_dict(),
        verdict,
    )


def _verdict(challenger: str, cmp: ArmComparison) -> str:
    """The verdict in words; the p-value only where the metric has a test (r2 has none)."""
    if cmp.verdict == "challenger_better":
        return f"challenger {challenger} is better ({significance(cmp)})"
    if cmp.verdict == "challenger_worse":
        return f"challenger {challenger} is worse ({significance(cmp)})"
    return f"no significant difference yet: {significance(cmp)}"
