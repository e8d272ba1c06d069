"""The dashboard with a fleet of a thousand members (one trained for real, the others registered
with its champion, ``tests/fleet/fleet_members.py``) beside a plain model: the overview lists the
fleet as one row (members counted, the newest decisions across them, a member in rollout), the
fleet page lists its members a page at a time, sortable and filtered, and links each to its own
model page; in headless Chromium, both pages load clean and the fleet page's sort links work.

Set ``UI_SCREENSHOTS=docs/img`` to refresh docs/ui.md's screenshots of them."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from servehelp import Served, free_port

from fleet.fleet_data import FLEET, fleet_rows, fleet_spec  # tests/fleet
from fleet.fleet_members import register_members
from retrainer.core.clock import utcnow
from retrainer.core.entities import Decision
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app
from waits import CATCH_UP, SERVER_START, wait_until

from .test_ui import clean, load, screenshot

MEMBERS = 1000


def _decision(model: str, action: str, minutes: int, **numbers: Any) -> Decision:
    at = utcnow() - timedelta(minutes=minutes)
    return Decision(model, action, ("a test decision",), dict(numbers), at, False, "done")


@pytest.fixture(scope="module")
def fleet_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Fleet ``sales`` (sales.s0 trained, 999 more members with its champion, sales.s0 with a
    canary challenger, three members with decisions) and plain model ``plain``, served."""
    folder = tmp_path_factory.mktemp("ui-fleet")
    raw = fleet_spec(f"sqlite:///{folder / 'ws.db'}", str(folder / "art"))
    raw["models"]["plain"] = {
        "task": "regression", "target": "y", "id_column": "id", "time_column": "ts",
        "features": {"numeric": ["x"]}, "family": "lightgbm",
    }  # fmt: skip
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(raw))
    with Workspace(parse_spec(raw, environ={})) as ws:
        ingest_frame(ws, FLEET, fleet_rows(["s0"], 120))
        train(ws, "sales.s0", deploy=True)
        second = train(ws, "sales.s0", deploy=False, force=True).version.version
        ws.store.set_challenger("sales.s0", second, "canary", 0.1, "a test canary", "manual")
        register_members(ws, FLEET, "sales.s0", [f"e{i:03d}" for i in range(MEMBERS - 1)])
        worse = {"live_metric": 2.0, "baseline_metric": 1.0, "degradation": 0.5}
        same = {"live_metric": 1.0, "baseline_metric": 1.0, "degradation": 0.0}
        drifted = {"data_drift": True, "critical_drift": True, "drift_share": 0.5}
        ws.store.add_decision(_decision("sales.e005", "full_retrain", 30, **worse, **drifted))
        ws.store.add_decision(_decision("sales.e007", "nothing", 20, **same, data_drift=False))
        ws.store.add_decision(_decision("sales.e009", "fine_tune", 10))
    app = create_app(config, scheduler=False, log_predictions=False)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started or not thread.is_alive(), "the server to start", SERVER_START)
    assert srv.started, "the server thread ended without starting"
    registry = app.state.retrainer.registry
    wait_until(lambda: len(registry.members(FLEET)) == MEMBERS, "the members listed", CATCH_UP)
    yield Served(f"http://127.0.0.1:{port}", app, config)
    srv.should_exit = True
    thread.join(SERVER_START)


def test_the_overview_of_a_thousand_members_is_one_fleet_row(fleet_served: Served) -> None:
    with httpx.Client(base_url=fleet_served.url, timeout=CATCH_UP) as c:
        page = c.get("/ui")
        api = c.get("/ui/api/overview").json()
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert text.count('data-fleet="sales"') == 1 and 'data-model="sales.' not in text
    assert 'data-model="plain"' in text  # a plain model keeps its own row
    row = text[text.index('data-fleet="sales"') : text.index("</tr>", text.index("data-fleet"))]
    assert "1,000 members" in row and "fleet by store" in row
    assert "1,000</b> of 1,000 have a champion" in row
    assert "1 in rollout" in row and "sales.s0: canary" in row
    assert "1 of 2 degraded" in row and "1 of 2 drifted" in row  # e005 of e005, e007
    newest = re.findall(r'/ui/models/(sales\.e\d+)">', row)
    assert newest == ["sales.e009", "sales.e007", "sales.e005"], newest  # newest first
    assert api["store_up"] and api["fleets"] == [FLEET] and api["models"] == ["plain"]
    assert api["html"].count("<tr") == 2


def test_the_fleet_page_sorts_filters_and_pages_members(fleet_served: Served) -> None:
    with httpx.Client(base_url=fleet_served.url, timeout=CATCH_UP) as c:
        first = c.get("/ui/fleets/sales")
        by_versions = c.get("/ui/fleets/sales?sort=versions&order=desc")
        last = c.get("/ui/fleets/sales?page=999")
        found = c.get("/ui/fleets/sales?q=e00")
        api = c.get("/ui/api/fleets/sales?sort=decision&order=desc").json()
        others = [c.get(f"/ui/fleets/sales?sort={k}&order={o}")
                  for k in ("since", "champion") for o in ("asc", "desc")]  # fmt: skip
        bad = c.get("/ui/fleets/sales?sort=colour")
        none = c.get("/ui/fleets/nope")
        member = c.get("/ui/models/sales.e005")
    members = re.findall(r'data-member="([^"]+)"', first.text)
    assert first.status_code == 200 and len(members) == 50
    assert members[:2] == ["sales.e000", "sales.e001"], members[:2]
    assert "members 1–50 of 1,000 · page 1 of 20" in html.unescape(first.text)
    assert re.findall(r'data-member="([^"]+)"', by_versions.text)[0] == "sales.s0"  # 2 versions
    assert "page 20 of 20" in last.text and len(re.findall("data-member=", last.text)) == 50
    assert len(re.findall("data-member=", found.text)) == 10  # e000 … e009
    assert api["members"] == MEMBERS and api["store_up"]
    top = re.findall(r'data-member="([^"]+)"', api["html"])[:3]
    assert top == ["sales.e009", "sales.e007", "sales.e005"], top
    assert all(len(re.findall("data-member=", r.text)) == 50 for r in others)
    by_champion = re.findall(r'data-member="([^"]+)"', others[3].text)  # the newest first
    assert by_champion[:2] == ["sales.e000", "sales.e001"], by_champion[:2]  # ties: by name
    assert bad.status_code == 400 and "cannot sort by 'colour'" in html.unescape(bad.text)
    assert "versions" in bad.text and 'href="/ui/fleets/sales"' in bad.text
    assert none.status_code == 404 and "no fleet named 'nope'" in html.unescape(none.text)
    assert member.status_code == 200 and 'href="/ui/fleets/sales"' in member.text


def test_chromium_loads_the_overview_and_the_fleet_page(
    fleet_served: Served, chrome: Any, tmp_path: Path
) -> None:
    log = load(chrome, f"{fleet_served.url}/ui", "document.querySelector('tr[data-fleet]')",
               "the fleet's row")  # fmt: skip
    rows = chrome.evaluate("document.querySelectorAll('#live tr').length")
    assert rows == 2, rows  # the fleet and the plain model
    row = chrome.evaluate("document.querySelector('tr[data-fleet=sales]').innerText")
    assert "1,000 members" in row and "in rollout" in row, row
    chrome.evaluate("window.retrainerPoll()")  # the polled table keeps the fleet's row
    chrome.wait_for(
        "document.querySelectorAll('tr[data-fleet=sales]').length === 1", CATCH_UP,
        "the polled overview to keep one row for the fleet",
    )  # fmt: skip
    clean(log, fleet_served)
    screenshot(chrome, tmp_path, "ui-fleet-overview.png", 330)
    chrome.evaluate("document.querySelector('tr[data-fleet=sales] a').click()")
    chrome.wait_for(
        "location.pathname === '/ui/fleets/sales' && document.readyState === 'complete' && "
        "document.querySelectorAll('tr[data-member]').length === 50",
        CATCH_UP, "the fleet page with its first 50 members",
    )  # fmt: skip
    chrome.evaluate("document.querySelector('a.sort[data-sort=rows]').click()")
    chrome.wait_for("location.search.includes('sort=rows') && document.readyState === "
                    "'complete' && !!document.querySelector('tr[data-member]')", CATCH_UP,
                    "the page sorted by training rows")  # fmt: skip
    chrome.evaluate("document.querySelector('a.sort[data-sort=rows]').click()")  # descending
    chrome.wait_for("location.search.includes('order=desc') && document.readyState === "
                    "'complete' && !!document.querySelector('tr[data-member]')", CATCH_UP,
                    "the page sorted by training rows, most first")  # fmt: skip
    top = chrome.evaluate("document.querySelector('tr[data-member]').dataset.member")
    assert top == "sales.s0", top  # the one member with rows of its own
    chrome.evaluate("window.retrainerPoll()")
    chrome.wait_for(
        "document.querySelector('tr[data-member]').dataset.member === 'sales.s0' && "
        "document.querySelectorAll('tr[data-member]').length === 50",
        CATCH_UP, "the polled table to keep the sort",
    )  # fmt: skip
    chrome.evaluate("document.querySelector('a.next').click()")
    chrome.wait_for("location.search.includes('page=2') && document.readyState === 'complete'"
                    " && !!document.querySelector('tr[data-member]')", CATCH_UP,
                    "the second page")  # fmt: skip
    assert "page 2 of 20" in chrome.evaluate("document.querySelector('p.pager').innerText")
    url = f"{fleet_served.url}/ui/fleets/sales?sort=decision&order=desc"
    clean(load(chrome, url, "document.querySelector('tr[data-member]')", "the members"),
          fleet_served)  # fmt: skip
    screenshot(chrome, tmp_path, "ui-fleet.png", 520)
    assert not chrome.log.console_errors and not chrome.log.exceptions, chrome.log.exceptions
    assert not chrome.log.failed, chrome.log.failed


def test_latest_decisions_of_many_models_in_one_read(store_url: str) -> None:
    """``store.latest_decisions``: each named model's newest decision, on SQLite and PostgreSQL;
    a model without one is absent, and a model not named is not read."""
    from retrainer.store import SqlStore

    store = SqlStore(store_url)
    try:
        for minutes, model in ((30, "f.a"), (20, "f.b"), (10, "f.a"), (5, "g")):
            store.add_decision(_decision(model, "nothing", minutes, n=minutes))
        latest = store.latest_decisions(["f.a", "f.b", "f.c"])
        assert {m: d.numbers["n"] for m, d in latest.items()} == {"f.a": 10, "f.b": 20}
        assert latest["f.a"].reasons == ("a test decision",) and latest["f.a"].id is not None
        assert store.latest_decisions([]) == {}
    finally:
        store.close()


def test_the_store_down_keeps_the_fleet_page_under_a_banner(fleet_served: Served) -> None:
    """The SQLite file moved away (a directory in its place): the last known members show."""
    store = fleet_served.state.ws.store
    db = Path(str(store.engine.url.database))
    with httpx.Client(base_url=fleet_served.url, timeout=CATCH_UP) as c:
        assert c.get("/ui/fleets/sales").status_code == 200  # known states
        assert c.get("/ui").status_code == 200
        away = db.with_name(db.name + ".away")
        db.rename(away)
        db.mkdir()
        store.engine.dispose()
        try:
            page = c.get("/ui/fleets/sales?page=2")
            api = c.get("/ui/api/fleets/sales").json()
            overview = c.get("/ui")
        finally:
            db.rmdir()
            away.rename(db)
            store.engine.dispose()
        back = c.get("/ui/fleets/sales")
    assert page.status_code == 200 and "The store is unreachable." in page.text
    assert len(re.findall("data-member=", page.text)) == 50 and "page 2 of 20" in page.text
    assert api["store_up"] is False and api["members"] == MEMBERS and api["error"]
    assert overview.status_code == 200 and 'data-fleet="sales"' in overview.text
    assert back.status_code == 200 and "The store is unreachable." not in back.text
