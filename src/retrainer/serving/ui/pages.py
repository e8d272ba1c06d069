"""The dashboard's HTML: the overview, the model page and the 404 page, rendered on the server
(charts: inline SVG from :mod:`retrainer.report.charts`); one stylesheet from the package and a
little inline script (polling, the confirm step of an action). Every value is escaped.

>>> "<svg" in badge(Badge("ok", "accuracy 0.9 vs 0.88"))
False
>>> 'class="badge ok"' in badge(Badge("ok", "accuracy 0.9 vs 0.88"))
True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from ...core.entities import Decision
from ...report.charts import (
    decisions_chart,
    drift_chart,
    estimate_chart,
    lineage_chart,
    live_metric_chart,
    short,
)
from ...store import role_of
from .charts import version_chart
from .fleet import FleetRow
from .script import ACTIONS_JS, POLL_JS
from .snapshot import Badge, ModelPage, ModelRow, Read

# numbers shown beside each decision (all of them are behind "all numbers")
KEY_NUMBERS = (
    "rule", "live_metric", "baseline_metric", "degradation", "live_samples", "drift_share",
    "challenger", "fraction", "labelled",
)  # fmt: skip


def e(x: Any) -> str:
    return escape(str(x), quote=True)


def badge(b: Badge) -> str:
    title = f' title="{e(b.title)}"' if b.title else ""
    return f'<span class="badge {e(b.level)}"{title}>{e(b.text)}</span>'


def layout(base: str, title: str, body: str, script: str = "", *, data: str = "") -> str:
    """A whole page: nothing is fetched but the package's stylesheet (no external URL)."""
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{e(base)}/ui/static/ui.css"></head>'
        f'<body data-base="{e(base)}"{data}>'
        f'<header><a class="home" href="{e(base)}/ui">retrainer</a>'
        f"<span>{e(title)}</span></header>"
        f"<main>{body}</main>" + (f"<script>{script}</script>" if script else "") + "</body></html>"
    )


def banner(read: Read) -> str:
    """The store-down banner (empty while the store answers)."""
    if read.store_up:
        return ""
    when = "nothing known yet" if read.at is None else f"the state as of {read.at:%H:%M:%S} UTC"
    return (
        '<div class="banner" role="alert"><b>The store is unreachable.</b> '
        f"{e(read.error)} Showing {when}; this page retries every few seconds.</div>"
    )


def _decision_cell(d: Decision | None) -> str:
    if d is None:
        return '<span class="muted">none yet</span>'
    dry = " (dry run)" if d.dry_run else ""
    reasons = "; ".join(d.reasons)
    return (
        f'<span title="{e(reasons)}">{e(d.action.replace("_", " "))}{dry}</span>'
        f'<br><small class="muted">{d.taken_at:%Y-%m-%d %H:%M} · {e(short(d.outcome or "", 60))}'
        "</small>"
    )


def overview_rows(base: str, rows: Sequence[ModelRow | FleetRow]) -> str:
    out = []
    for r in rows:
        if isinstance(r, FleetRow):
            out.append(fleet_row(base, r))
            continue
        champ = r.roles.champion or "–"
        since = r.roles.champion_since
        loaded = "" if r.served["ready"] == "ready" else f" ({r.served['ready']})"
        out.append(
            f'<tr data-model="{e(r.model)}">'
            f'<td><a href="{e(base)}/ui/models/{e(r.model)}"><b>{e(r.model)}</b></a></td>'
            f'<td class="champion-cell"><b>{e(champ)}</b>{e(loaded)}'
            + (f'<br><small class="muted">since {since:%Y-%m-%d}</small>' if since else "")
            + f"</td><td>{e(r.rollout)}</td>"
            f"<td>{badge(r.health)}</td><td>{badge(r.drift)}</td>"
            f"<td>{_decision_cell(r.last_decision)}</td><td>{e(r.next_job)}</td></tr>"
        )
    return "".join(out) or '<tr><td colspan="7" class="muted">No model known.</td></tr>'


def fleet_row(base: str, r: FleetRow) -> str:
    """A fleet's row on the overview: its members counted, the newest decisions across them."""
    rollout = "no challenger"
    if r.rollouts:
        listed = "; ".join(f"{m}: {text}" for m, text in r.rollouts[:10])
        more = f" (and {len(r.rollouts) - 10:,} more)" if len(r.rollouts) > 10 else ""
        rollout = (
            f'<span title="{e(listed + more)}">{len(r.rollouts):,} in rollout</span>'
            f'<br><small class="muted">{e(short(listed, 60))}</small>'
        )
    newest = "<br>".join(
        f'<a href="{e(base)}/ui/models/{e(d.model)}">{e(d.model)}</a> {_decision_cell(d)}'
        for d in r.newest
    )
    return (
        f'<tr class="fleet" data-fleet="{e(r.fleet)}">'
        f'<td><a href="{e(base)}/ui/fleets/{e(r.fleet)}"><b>{e(r.fleet)}</b></a>'
        f'<br><small class="muted">fleet by {e(r.by)} · {r.members:,} members</small></td>'
        f'<td class="champion-cell"><b>{r.champions:,}</b> of {r.members:,} have a champion'
        f'<br><small class="muted">{r.loaded:,} loaded here (the others on request)</small></td>'
        f"<td>{rollout}</td><td>{badge(r.health)}</td><td>{badge(r.drift)}</td>"
        f"<td>{newest or _decision_cell(None)}</td><td>{e(r.next_job)}</td></tr>"
    )


def overview(base: str, read: Read) -> str:
    rows: list[ModelRow | FleetRow] = read.value or []
    body = (
        f'<div id="banner">{banner(read)}</div>'
        '<section><h1>Models</h1><p class="note">Live: this table refreshes every 5 seconds. '
        "Health compares the champion's live metric with its holdout baseline; drift is the "
        "latest drift check.</p>"
        '<table class="models"><thead><tr><th>model</th><th>champion</th>'
        "<th>challenger / rollout</th><th>health</th><th>drift</th><th>last decision</th>"
        f'<th>next scheduled job</th></tr></thead><tbody id="live">'
        f"{overview_rows(base, rows)}</tbody></table></section>"
    )
    return layout(base, "dashboard", body, POLL_JS, data=' data-poll="/ui/api/overview"')


def not_found(
    base: str,
    what: str,
    models: Sequence[str],
    fleets: Sequence[str] = (),
    heading: str = "Not found",
) -> str:
    """The 404 page: the served models and fleets (a fleet's members are on its page)."""
    items = "".join(f'<li><a href="{e(base)}/ui/models/{e(m)}">{e(m)}</a></li>' for m in models)
    items += "".join(
        f'<li><a href="{e(base)}/ui/fleets/{e(f)}">{e(f)}</a> (a fleet)</li>' for f in fleets
    )
    body = (
        f'<section class="missing"><h1>{e(heading)}</h1><p>{e(what)}</p>'
        f'<p>The models this server serves:</p><ul class="served">{items}</ul></section>'
    )
    return layout(base, "not found", body)


def summary(base: str, page: ModelPage) -> str:
    """The model page's live part: the cards and the rollout's progress."""
    r = page.row
    cards = [
        ("champion", f"<b>{e(r.roles.champion or '–')}</b>"),
        ("challenger / rollout", e(r.rollout)),
        ("health", badge(r.health)),
        ("drift", badge(r.drift)),
        ("last decision", _decision_cell(r.last_decision)),
        ("next scheduled job", e(r.next_job)),
    ]
    html = '<div class="cards">' + "".join(
        f'<div class="card"><span>{e(k)}</span><div>{v}</div></div>' for k, v in cards
    )
    return html + "</div>" + _rollout(page)


def _rollout(page: ModelPage) -> str:
    ch = page.row.roles.challenger
    if ch is None:
        return ""
    steps = page.steps if ch.mode == "canary" else [ch.fraction]
    marks = "".join(
        f'<span class="step{" done" if i <= ch.step else ""}">{f:.0%}</span>'
        for i, f in enumerate(steps)
    )
    ab = page.ab or {}
    arms = "".join(
        f"<tr><td>{e(a.get('version'))}</td><td>{e(a.get('arm'))}</td>"
        f'<td class="num">{e(a.get("labelled"))}</td>'
        f'<td class="num">{e(_num((a.get("metrics") or {}).get(page.data.metric)))}</td></tr>'
        for a in ab.get("arms", [])
    )
    table = (
        f'<table class="arms"><tr><th>version</th><th>arm</th><th>labelled</th>'
        f"<th>live {e(page.data.metric)}</th></tr>{arms}</table>"
        if arms
        else ""
    )
    return (
        f'<div class="rollout"><h2>{e(ch.mode)} test: {e(ch.version)} against champion '
        f"{e(page.row.roles.champion or '–')}</h2>"
        f'<div class="steps">{marks}</div>'
        f"<p>On {ch.fraction:.0%} of traffic since {ch.started_at:%Y-%m-%d %H:%M}; "
        f"each step needs {page.min_samples} labelled predictions per arm.</p>"
        f'<p class="verdict">Verdict: <b>{e(ab.get("verdict", "not measured yet"))}</b></p>'
        f"{table}</div>"
    )


def _num(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return "–" if x is None else str(x)


def _decisions(data_decisions: Sequence[Decision], limit: int = 30) -> str:
    rows = []
    for d in list(data_decisions)[-limit:][::-1]:
        keys = [
            f"{k} {_num(d.numbers[k])}"
            for k in KEY_NUMBERS
            if k in d.numbers and not isinstance(d.numbers[k], dict | list)
        ]
        numbers = json.dumps(d.numbers, indent=1, sort_keys=True, default=str)
        rows.append(
            f'<tr class="{"dry" if d.dry_run else ""}"><td>{d.taken_at:%Y-%m-%d %H:%M}</td>'
            f"<td>{e(d.action.replace('_', ' '))}{' (dry run)' if d.dry_run else ''}</td>"
            f"<td>{e(', '.join(keys))}<details><summary>all numbers</summary>"
            f"<pre>{e(numbers)}</pre></details></td>"
            f'<td title="{e("; ".join(d.reasons))}">{e(short("; ".join(d.reasons), 140))}</td>'
            f"<td>{e(short(d.outcome or '', 90))}</td></tr>"
        )
    if not rows:
        return '<p class="note">No decision yet: `maintain` records one each turn.</p>'
    return (
        '<div class="scroll"><table class="decisions"><thead><tr><th>when</th><th>decision</th>'
        "<th>numbers</th><th>reasons</th><th>outcome</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _versions(page: ModelPage) -> str:
    data = page.data
    rows = "".join(
        f'<tr><td><b>{e(v.version)}</b></td><td><span class="tag {e(role_of(v, data.roles))}">'
        f"{e(role_of(v, data.roles))}</span></td><td>{e(v.parent or '–')}</td>"
        f"<td>{e(v.kind.replace('_', ' '))}</td><td>{v.created_at:%Y-%m-%d}</td>"
        f'<td class="num">{e(_num(v.metrics.get(data.metric)))}</td>'
        f'<td title="{e(v.reason)}">{e(short(v.reason, 80))}</td></tr>'
        for v in reversed(data.versions)
    )
    return (
        f'<div class="lineage">{lineage_chart(data)}</div><div class="scroll"><table>'
        "<tr><th>version</th><th>role</th><th>parent</th><th>kind</th><th>created</th>"
        f"<th>holdout {e(data.metric)}</th><th>reason</th></tr>{rows}</table></div>"
    )


def _actions(page: ModelPage, token_set: bool) -> str:
    data = page.data
    champion = page.row.roles.champion
    # every version stays listed (the champion marked): the options hold after an action made
    # from this page; the server refuses, in words, what cannot be done
    choices = [v.version for v in reversed(data.versions) if v.status != "deleted"]
    first = next((v for v in choices if v != champion), None)

    def option(v: str, chosen: str | None) -> str:
        mark = " (champion)" if v == champion else ""
        sel = " selected" if v == chosen else ""
        return f'<option value="{e(v)}"{sel}>{e(v)}{mark}</option>'

    deployable = "".join(option(v, first) for v in choices)
    back = page.rollback_to
    previous = f'<option value="">the previous champion ({e(back)})</option>' if back else ""
    rollback_opts = previous + "".join(option(v, None if back else first) for v in choices)
    token = (
        '<label>Admin token <input id="token" type="password" autocomplete="off" '
        'placeholder="RETRAINER_API_TOKEN"></label>'
        if token_set
        else '<p class="note">This server has no admin token: actions are open to anyone who '
        "can reach it.</p>"
    )
    return (
        '<section class="actions"><h2>Actions</h2>'
        '<p class="note">Each action asks for confirmation, then calls the server\'s /v1 route '
        "with the token in its Authorization header (the token is never stored).</p>"
        f"{token}"
        '<div class="forms">'
        f'<form data-action="deploy"><select name="version">{deployable}</select>'
        '<button type="submit">Deploy…</button></form>'
        f'<form data-action="rollback"><select name="to">{rollback_opts}</select>'
        '<button type="submit">Roll back…</button></form>'
        '<form data-action="maintain"><label><input type="checkbox" name="dry_run"> dry run'
        '</label><button type="submit">Maintain…</button></form></div>'
        '<div id="confirm" hidden><p id="confirm-text"></p>'
        '<button id="confirm-yes" type="button">Confirm</button> '
        '<button id="confirm-no" type="button">Cancel</button></div>'
        '<p id="result" role="status"></p></section>'
    )


def model_page(base: str, name: str, read: Read, token_set: bool, fleet: str | None = None) -> str:
    """A model's page (``fleet``: the fleet it is a member of, linked from the page)."""
    page: ModelPage | None = read.value
    head = f'<div id="banner">{banner(read)}</div>'
    if page is None:
        body = head + f"<section><h1>{e(name)}</h1><p>No state known yet.</p></section>"
        return layout(base, name, body, POLL_JS, data=_attrs(name))
    data = page.data
    member = (
        f'A member of fleet <a href="{e(base)}/ui/fleets/{e(fleet)}">{e(fleet)}</a>; '
        if fleet
        else ""
    )
    charts = [
        (f"live {data.metric} over time, the champion of each period shaded, with deploy / "
         "promote / rollback marks", live_metric_chart(data)),
        (f"live {data.metric} per version", version_chart(data)),
        ("estimated vs realised performance", estimate_chart(data)),
        ("drift per feature over time (PSI)", drift_chart(data)),
        ("decision timeline", decisions_chart(data)),
    ]  # fmt: skip
    sections = "".join(
        f'<section class="chart"><h2>{e(t)}</h2>{svg}</section>' for t, svg in charts
    )
    body = (
        head + f'<section><h1>{e(name)}</h1><p class="note">{member}{e(data.task)}, primary metric '
        f"{e(data.metric)}; the summary refreshes every 5 seconds, the charts on reload.</p>"
        f'<div id="live">{summary(base, page)}</div></section>'
        + _actions(page, token_set)
        + sections
        + f"<section><h2>Decisions (latest first)</h2>{_decisions(data.decisions)}</section>"
        + f"<section><h2>Versions and lineage</h2>{_versions(page)}</section>"
    )
    return layout(base, name, body, POLL_JS + ACTIONS_JS, data=_attrs(name))


def _attrs(name: str) -> str:
    return f' data-poll="/ui/api/models/{e(name)}" data-model="{e(name)}"'


def stamp(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
