"""`abtest`: each arm's live metric since the challenger went on traffic, with a
significance test and a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.clock import utcnow
from ..core.errors import ConflictError
from .rollout import arms, step_started
from .workspace import Workspace


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
    ws.model_spec(model)
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
    verdict = (
        "not enough labelled predictions yet"
        if cmp is None
        else {
            "challenger_better": f"challenger {ch.version} is better (p = {cmp.p_value:.3g})",
            "challenger_worse": f"challenger {ch.version} is worse (p = {cmp.p_value:.3g})",
            "inconclusive": "no significant difference yet"
            + (f" (p = {cmp.p_value:.3g})" if cmp.p_value is not None else f" ({cmp.test} test)"),
        }[cmp.verdict]
    )
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
