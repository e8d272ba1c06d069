"""The dashboard in headless Chromium: each page loads with no console error and no failed
request, the charts draw the seeded store's data, the overview refreshes by itself, a rollback
clicked with the token changes the champion (and without it is refused, changing nothing);
over plain HTTP: the 404 page lists the models, and the store down gives a banner over the last
known state.

Set ``UI_SCREENSHOTS=docs/img`` to refresh the README's screenshots."""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
from cdphelp import PageLog
from servehelp import Served

from retrainer.core.spec import load_spec
from retrainer.plumbing.workspace import Workspace
from waits import CATCH_UP

from .conftest import TOKEN

MODEL = "weather"
WIDTH = 1280


def load(chrome: Any, url: str, ready: str, what: str) -> PageLog:
    """Open ``url`` in a fresh tab and wait until ``ready`` holds; the tab's log."""
    chrome.log = PageLog()
    chrome.open(url)
    chrome.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": 1500, "deviceScaleFactor": 1, "mobile": False},
    )
    chrome.wait_for(f"document.readyState === 'complete' && !!({ready})", CATCH_UP, what)
    log: PageLog = chrome.log
    return log


def clean(log: PageLog, served: Served) -> None:
    assert not log.console_errors and not log.exceptions, (log.console_errors, log.exceptions)
    assert not log.failed, log.failed
    fetched = [u for u in log.requests if not u.startswith("data:")]
    assert fetched and all(u.startswith(served.url + "/") for u in fetched), fetched


def screenshot(chrome: Any, tmp_path: Path, name: str, height: int) -> Path:
    """The top ``height`` pixels, as a 256-colour PNG (small enough for the README)."""
    from PIL import Image

    shot = chrome.send(
        "Page.captureScreenshot",
        {"format": "png", "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}},
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    assert image.size == (WIDTH, height)
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 100, f"{name}: only {len(colours)} colours, the page looks blank"
    out = tmp_path / name
    image.quantize(colors=256).save(out, optimize=True)
    assert out.stat().st_size < 300_000, f"{name} is {out.stat().st_size} bytes"
    target = os.environ.get("UI_SCREENSHOTS")
    if target:
        shutil.copy(out, Path(target) / name)
    return out


def champion(served: Served) -> str | None:
    with Workspace(load_spec(served.config, environ={})) as ws:
        return ws.store.roles(MODEL).champion


def test_overview_loads_and_refreshes_by_itself(
    served: Served, chrome: Any, tmp_path: Path
) -> None:
    log = load(chrome, f"{served.url}/ui", "document.querySelector('tr[data-model]')", "a row")
    row = chrome.evaluate("document.querySelector('tr[data-model=weather]').innerText")
    assert champion(served) in row and "canary" in row, row
    assert chrome.evaluate("document.querySelectorAll('.badge').length") == 4
    assert "maintain at" in row  # the spec's schedule: the next run
    sales = chrome.evaluate("document.querySelector('tr[data-model=sales]').innerText")
    assert "no challenger" in sales and "none scheduled" in sales, sales
    clean(log, served)
    screenshot(chrome, tmp_path, "ui-overview.png", 460)
    # a decision made elsewhere shows up without a reload (the page polls its JSON route)
    with httpx.Client(base_url=served.url, timeout=CATCH_UP) as c:
        r = c.post(f"/v1/models/{MODEL}/maintain", json={"dry_run": True},
                   headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        assert r.status_code == 200, r.text
    chrome.wait_for(
        "document.querySelector('tr[data-model=weather]').innerText.includes('(dry run)')",
        CATCH_UP,
        "the overview to show the new dry-run decision without a reload",
    )
    assert not chrome.log.console_errors and not chrome.log.failed


def test_model_page_draws_the_seeded_store(served: Served, chrome: Any, tmp_path: Path) -> None:
    url = f"{served.url}/ui/models/{MODEL}"
    log = load(chrome, url, "document.querySelectorAll('section.chart svg').length === 5", "charts")
    clean(log, served)
    charts = chrome.evaluate(
        "[...document.querySelectorAll('section.chart svg')].map(s => ({label: "
        "s.getAttribute('aria-label'), circles: s.querySelectorAll('circle').length, "
        "rects: s.querySelectorAll('rect').length, segments: Math.max(0, ...[...s"
        ".querySelectorAll('path')].map(p => (p.getAttribute('d') || '').split('L').length - 1)),"
        " empty: s.querySelectorAll('.empty').length}))"
    )
    live, per_version, estimate, drift, decisions = charts
    assert per_version["circles"] >= 10 and not per_version["empty"], per_version
    versions = chrome.evaluate(
        "new Set([...document.querySelectorAll('svg path.version')].map(p => p.dataset.version))"
        ".size"
    )
    assert versions >= 2, "one line per version that served: at least two"
    assert live["segments"] >= 10 and not live["empty"], live  # a line through every month
    assert estimate["segments"] >= 10 and not estimate["empty"], estimate
    assert drift["rects"] >= 8 and not drift["empty"], drift  # heat-map cells
    assert decisions["circles"] >= 10, decisions  # one dot per decision
    with Workspace(load_spec(served.config, environ={})) as ws:
        n_versions = len(ws.store.list_versions(MODEL))
    nodes = chrome.evaluate("document.querySelectorAll('.lineage g.node').length")
    assert nodes == n_versions >= 3, (nodes, n_versions)
    text = chrome.evaluate("document.body.innerText")
    assert "canary test" in text and "Verdict:" in text, text[:2000]
    assert chrome.evaluate("document.querySelectorAll('table.decisions details').length") >= 10
    screenshot(chrome, tmp_path, "ui-model.png", 1500)


def _act(chrome: Any, kind: str, token: str | None, *, choice: str = "", yes: bool = True) -> str:
    """Click the ``kind`` form's button (its select set to ``choice``), then Confirm (or
    Cancel); what the page says."""
    form = f"document.querySelector('form[data-action={kind}]')"
    chrome.evaluate(
        "document.getElementById('result').textContent = '';"
        f"document.getElementById('token').value = {token or ''!r};"
        f"if ({form}.querySelector('select')) {form}.querySelector('select').value = {choice!r};"
        f"{form}.querySelector('button').click()"
    )
    chrome.wait_for(
        "!document.getElementById('confirm').hidden", CATCH_UP, "the confirm step to show"
    )
    asked = chrome.evaluate("document.getElementById('confirm-text').textContent")
    assert "?" in asked and MODEL in asked, asked
    chrome.evaluate(f"document.getElementById('confirm-{'yes' if yes else 'no'}').click()")
    result: str = chrome.wait_for(
        "document.getElementById('result').className !== 'running' && "
        "document.getElementById('result').textContent",
        CATCH_UP,
        f"the {kind}'s answer on the page",
    )
    return result


def test_rollback_needs_the_token(served: Served, chrome: Any) -> None:
    before = champion(served)
    url = f"{served.url}/ui/models/{MODEL}"
    load(chrome, url, "document.querySelector('form[data-action=rollback]')", "the actions")
    target = chrome.evaluate("document.querySelector('form[data-action=rollback] select').value")
    assert target == "", "the default target is the previous champion"
    assert _act(chrome, "rollback", TOKEN, yes=False) == "Cancelled: nothing changed."
    for token, code in ((None, "401"), ("wrong", "403")):
        said = _act(chrome, "rollback", token)
        assert "Refused" in said and code in said and "Nothing changed" in said, said
        assert champion(served) == before
    assert len(chrome.log.failed) == 2  # the two refusals, nothing else
    said = _act(chrome, "rollback", TOKEN)
    after = champion(served)
    assert after != before and f"champion is now {after}" in said, said
    with httpx.Client(base_url=served.url) as c:
        status = c.get(f"/v1/models/{MODEL}/status").json()
    assert status["champion"]["version"] == after
    chrome.wait_for(
        f"document.querySelector('#live .card b').textContent === {after!r}",
        CATCH_UP,
        "the page's summary to show the new champion",
    )
    said = _act(chrome, "deploy", TOKEN, choice=str(before))  # and back, by the deploy button
    assert f"champion is now {before}" in said and champion(served) == before, said
    chrome.evaluate("document.querySelector('form[data-action=maintain] input').checked = true")
    with Workspace(load_spec(served.config, environ={})) as ws:
        decided = len(ws.store.decisions(MODEL, 1000))
    said = _act(chrome, "maintain", TOKEN)
    assert said.startswith("maintain done: "), said
    with Workspace(load_spec(served.config, environ={})) as ws:
        last = ws.store.decisions(MODEL, 1000)
    assert len(last) == decided + 1 and last[-1].dry_run and champion(served) == before
    assert not chrome.log.console_errors[2:] and not chrome.log.exceptions
    assert len(chrome.log.failed) == 2


def test_an_unknown_model_gets_the_404_page_listing_the_models(served: Served) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.get("/ui/models/nope")
        other = c.get("/ui/nothing/here")
        slash = c.get("/ui/")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no model named 'nope'" in html.unescape(r.text)
    assert f'<a href="/ui/models/{MODEL}">{MODEL}</a>' in r.text
    assert other.status_code == 404 and f"/ui/models/{MODEL}" in other.text
    assert slash.status_code == 200 and 'data-model="sales"' in slash.text


def test_the_store_down_gives_a_banner_over_the_last_known_state(served: Served) -> None:
    """The SQLite file is moved away and a directory put in its place: no connection opens."""
    store = served.state.ws.store
    db = Path(str(store.engine.url.database))
    with httpx.Client(base_url=served.url, timeout=CATCH_UP) as c:
        known = c.get(f"/ui/models/{MODEL}").text
        assert c.get("/ui").status_code == 200 and "The store is unreachable." not in known
        away = db.with_name(db.name + ".away")
        db.rename(away)
        db.mkdir()
        store.engine.dispose()  # the pooled connections go: every new one fails
        try:
            overview, page = c.get("/ui"), c.get(f"/ui/models/{MODEL}")
            api = c.get("/ui/api/overview").json()
        finally:
            db.rmdir()
            away.rename(db)
            store.engine.dispose()
        back = c.get("/ui")
    for r in (overview, page):
        assert r.status_code == 200, r.text[:500]
        assert "The store is unreachable." in r.text and "Showing the state as of" in r.text
    assert "canary" in overview.text  # the last known rows
    assert page.text.count("<svg") >= 5  # the last known charts
    assert api["store_up"] is False and set(api["models"]) == {MODEL, "sales"} and api["error"]
    assert back.status_code == 200 and "The store is unreachable." not in back.text
