"""Feedback pulled from an HTTP JSON API (a real server on loopback, started by the test):
pagination, the since-cursor resumed on the next run, re-fetched and duplicate pages,
retries, authentication and bad pages; the lifecycle on SQLite and PostgreSQL, the real CLI
on SQLite. Also field mapping of JSONL logs (a shadow model's log used as feedback)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from test_feedback import MODEL, T0, log  # same folder (pytest prepends it to sys.path)
from typer.testing import CliRunner

from jsonapi import JsonApi
from retrainer.cli.main import app
from retrainer.core.errors import ConfigError, InputError
from retrainer.core.spec_sections import Feedback
from retrainer.lifecycle.feedback import feedback_file, follow_feedback
from retrainer.lifecycle.feedback_fields import FieldMap
from retrainer.lifecycle.feedback_http import (
    HttpSource,
    feedback_from_url,
    http_source,
    state_key,
)
from retrainer.plumbing.workspace import Workspace

TOKEN = "s3cr3t-t0ken-value"
PER_PAGE = 3
MAPPED = ["--id-field", "task_id", "--label-field", "success", "--time-field", "completed_at"]
API = ["--records", "data", "--next", "links.next", "--since-param", "since", *MAPPED]


def task(i: int) -> dict[str, Any]:
    done = T0 + timedelta(hours=i + 1)
    return {"task_id": f"t{i}", "success": i % 2, "completed_at": done.isoformat() + "Z"}


class FeedApi(JsonApi):
    """A JSON API on loopback in the shape of the backlink team's: tasks with completion
    times, three a page under ``data``, ``links.next`` a relative link, ``?since=`` inclusive;
    ``/cursor`` pages by an opaque cursor instead. ``canned`` answers a path exactly;
    ``failures`` are statuses served (with ``Retry-After: 0``) before the real answer."""

    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str | None]] = []
        self.canned: dict[str, tuple[int, str, bytes]] = {}
        self.failures: list[int] = []
        self.token: str | None = None
        self.release = threading.Event()  # what /slow waits for
        super().__init__(self.answer)

    def answer(self, path: str, auth: str | None) -> tuple[int, str, bytes]:
        self.requests.append((path, auth))
        if self.token is not None and auth != f"Bearer {self.token}":
            return 401, "application/json", b'{"error": "invalid or expired token"}'
        if self.failures:
            return self.failures.pop(0), "text/plain", b"busy"
        if path in self.canned:
            return self.canned[path]
        if path.startswith("/slow"):
            self.release.wait(30)  # past the client's timeout; released at teardown
            return 200, "application/json", b'{"data": []}'
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/cursor":
            start = int(query.get("cursor", "c0")[1:])
            items = self.tasks[start : start + PER_PAGE]
            more = start + PER_PAGE < len(self.tasks)
            body = {"items": items, "next_cursor": f"c{start + PER_PAGE}" if more else None}
            return 200, "application/json", json.dumps(body).encode()
        since = query.get("since")
        chosen = [
            t
            for t in self.tasks
            if since is None
            or datetime.fromisoformat(t["completed_at"]) >= datetime.fromisoformat(since)
        ]
        page = int(query.get("page", "1"))
        rows = chosen[(page - 1) * PER_PAGE : page * PER_PAGE]
        nxt = None
        if page * PER_PAGE < len(chosen):
            nxt = f"/feed?page={page + 1}" + (f"&since={since}" if since else "")
        body = {"data": rows, "links": {"next": nxt}, "total": len(chosen)}
        return 200, "application/json", json.dumps(body).encode()

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def feed() -> Iterator[FeedApi]:
    api = FeedApi()
    yield api
    api.close()


def source(url: str, **kw: Any) -> HttpSource:
    base: dict[str, Any] = {
        "records": "data",
        "next": "links.next",
        "since_param": "since",
        "retries": 0,
    }
    return HttpSource(url, **{**base, **kw})


FIELDS = FieldMap(id="task_id", label="success", time="completed_at")


# -- the lifecycle, on SQLite and PostgreSQL -------------------------------------------------


def test_pages_cursor_resume_and_refetch(
    store_url: str, make_workspace: Callable[..., Workspace], feed: FeedApi
) -> None:
    ws = make_workspace(store=store_url)
    log(ws, [f"t{i}" for i in range(12)])
    feed.tasks = [task(i) for i in range(9)]
    first = feedback_from_url(ws, MODEL, source(feed.url + "/feed"), FIELDS)
    r = first.result
    assert (first.pages, r.received, r.matched, r.duplicates, r.rejected) == (3, 9, 9, 0, 0)
    assert first.since is None and first.cursor == task(8)["completed_at"]
    assert [p for p, _ in feed.requests] == ["/feed", "/feed?page=2", "/feed?page=3"]
    assert ws.store.count_actuals(MODEL) == 9 and ws.store.training_stats(MODEL)[0] == 9

    feed.tasks += [task(i) for i in range(9, 12)]  # three new tasks; since is inclusive
    feed.requests.clear()
    second = feedback_from_url(ws, MODEL, source(feed.url + "/feed"), FIELDS)
    r = second.result
    assert second.since == task(8)["completed_at"] and second.cursor == task(11)["completed_at"]
    assert feed.requests[0][0] == f"/feed?since={task(8)['completed_at']}".replace(":", "%3A")
    assert (second.pages, r.received, r.matched, r.duplicates) == (2, 4, 3, 1)
    assert ws.store.count_actuals(MODEL) == 12 and ws.store.training_stats(MODEL)[0] == 12

    again = feedback_from_url(
        ws, MODEL, source(feed.url + "/feed"), FIELDS, since="2000-01-01T00:00:00Z"
    )
    r = again.result  # every page fetched again: nothing changes, all counted as duplicates
    assert (again.pages, r.received, r.matched, r.unmatched, r.duplicates) == (4, 12, 0, 0, 12)
    assert again.cursor == task(11)["completed_at"]
    assert ws.store.count_actuals(MODEL) == 12 and ws.store.training_stats(MODEL)[0] == 12


def test_the_same_task_from_a_log_and_the_api_is_stored_once(
    make_workspace: Callable[..., Workspace], feed: FeedApi, tmp_path: Path
) -> None:
    ws = make_workspace()
    log(ws, [f"t{i}" for i in range(4)])
    feed.tasks = [task(i) for i in range(4)]
    automation = tmp_path / "automation_logs.jsonl"
    automation.write_text("".join(json.dumps(task(i)) + "\n" for i in (0, 1, 5)))
    from_log = feedback_file(ws, MODEL, automation, fields=FIELDS)
    assert (from_log.received, from_log.matched, from_log.unmatched) == (3, 2, 1)
    got = feedback_from_url(ws, MODEL, source(feed.url + "/feed"), FIELDS).result
    assert (got.received, got.matched, got.duplicates) == (4, 2, 2)  # t0, t1 came from the log
    assert ws.store.count_actuals(MODEL) == 5 and ws.store.training_stats(MODEL)[0] == 4


def test_a_bad_page_stores_nothing_from_the_run(
    store_url: str, make_workspace: Callable[..., Workspace], feed: FeedApi
) -> None:
    ws = make_workspace(store=store_url)
    log(ws, [f"t{i}" for i in range(9)])
    feed.tasks = [task(i) for i in range(9)]
    feed.canned["/feed?page=3"] = (200, "application/json", b'{"items": []}')
    with pytest.raises(InputError, match=r"page=3 \(page 3\): the JSON body has no 'data'"):
        feedback_from_url(ws, MODEL, source(feed.url + "/feed"), FIELDS)
    assert ws.store.count_actuals(MODEL) == 0
    assert ws.store.get_state(MODEL, state_key(feed.url + "/feed")) is None


def test_cursor_pagination_and_a_duplicate_page(
    store_url: str, make_workspace: Callable[..., Workspace], feed: FeedApi
) -> None:
    ws = make_workspace(store=store_url)
    log(ws, [f"t{i}" for i in range(7)])
    feed.tasks = [task(i) for i in range(7)]
    src = source(feed.url + "/cursor", records="items", next="next_cursor", cursor_param="cursor")
    got = feedback_from_url(ws, MODEL, src, FIELDS)
    assert (got.pages, got.result.received, got.result.matched) == (3, 7, 7)
    assert [p for p, _ in feed.requests] == ["/cursor", "/cursor?cursor=c3", "/cursor?cursor=c6"]

    page = json.dumps({"data": [task(0), task(1)], "links": {"next": "/again"}}).encode()
    feed.canned["/dup"] = (200, "application/json", page)  # the API serves one page twice
    feed.canned["/again"] = (200, "application/json", page.replace(b'"/again"', b"null"))
    dup = feedback_from_url(ws, MODEL, source(feed.url + "/dup"), FIELDS)
    assert (dup.pages, dup.result.received, dup.result.duplicates) == (2, 4, 4)
    assert ws.store.count_actuals(MODEL) == 7


# -- the CLI ----------------------------------------------------------------------------------

runner = CliRunner()


def cli(config: Path, *args: Any, code: int) -> str:
    res = runner.invoke(app, ["-c", str(config), *[str(a) for a in args]])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, res.output
    return res.stdout if "--json" in args else res.output  # progress lines go to stderr


@pytest.fixture
def config(
    config_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    path: Path = config_file()
    with Workspace.open(path) as ws:
        log(ws, [f"t{i}" for i in range(12)])
    return path


def count(config: Path) -> int:
    with Workspace.open(config) as ws:
        return ws.store.count_actuals(MODEL)


def test_cli_pulls_pages_with_a_token_and_resumes(config: Path, feed: FeedApi) -> None:
    feed.token = TOKEN
    feed.tasks = [task(i) for i in range(9)]
    url = feed.url + "/feed"
    args = ["feedback", MODEL, "--from-url", url, *API, "--token-env", "FEED_TOKEN"]
    body = json.loads(cli(config, *args, "--json", code=0))
    assert body["received"] == 9 and body["matched"] == 9 and body["pages"] == 3
    assert body["source"] == url and body["since"] is None
    assert body["cursor"] == task(8)["completed_at"]
    assert {auth for _, auth in feed.requests} == {f"Bearer {TOKEN}"}

    feed.tasks += [task(9), task(10)]
    text = cli(config, *args, code=0)
    assert "3 received, 2 matched, 0 unmatched, 1 duplicates, 0 rejected" in text
    assert f"1 page(s); since-cursor {task(8)['completed_at']} -> {task(10)['completed_at']}" in (
        text
    )
    assert TOKEN not in text and count(config) == 11


def test_cli_pulls_from_the_spec_section(
    config_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    feed: FeedApi,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    section = {
        "url": feed.url + "/feed",
        "records": "data",
        "next": "links.next",
        "since_param": "since",
        "id_field": "task_id",
        "label_field": "success",
        "time_field": "completed_at",
    }
    path = config_file(feedback=section)
    with Workspace.open(path) as ws:
        log(ws, [f"t{i}" for i in range(4)])
    feed.tasks = [task(i) for i in range(4)]
    body = json.loads(cli(path, "feedback", MODEL, "--json", code=0))
    assert (body["received"], body["matched"], body["pages"]) == (4, 4, 2)
    assert json.loads(cli(path, "feedback", MODEL, "--json", code=0))["duplicates"] == 1

    bare = config_file()  # no feedback.url and no FILE
    text = cli(bare, "feedback", MODEL, code=2)
    assert "pass a FILE, or --from-url URL, or set feedback.url" in text


def test_cli_errors_name_the_url_the_page_and_the_key(
    config: Path, feed: FeedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    url = f"http://bot:pw@127.0.0.1:{closed}/feed?api_key=hush"
    text = cli(config, "feedback", MODEL, "--from-url", url, "--retries", "1", code=1)
    assert f"GET http://***@127.0.0.1:{closed}/feed?api_key=*** failed after 2 attempt" in text
    assert "hush" not in text and "pw" not in text

    feed.tasks = [task(i) for i in range(9)]
    feed.canned["/feed?page=2"] = (200, "text/html", b"<html>maintenance</html>")
    text = cli(config, "feedback", MODEL, "--from-url", feed.url + "/feed", *API, code=2)
    assert f"{feed.url}/feed?page=2 (page 2): the response (text/html) is not JSON" in text
    text = cli(
        config, "feedback", MODEL, "--from-url", feed.url + "/feed", *MAPPED, "--records",
        "items", code=2,
    )  # fmt: skip
    assert "(page 1): the JSON body has no 'items' (it has ['data', 'links', 'total'])" in text
    assert count(config) == 0

    feed.token = "another"
    args = ["feedback", MODEL, "--from-url", feed.url + "/feed", *API]
    text = cli(config, *args, "--token-env", "FEED_TOKEN", code=2)
    assert "HTTP 401 Unauthorized with the bearer token in $FEED_TOKEN" in text
    assert "invalid or expired token" in text and TOKEN not in text
    assert "Set --token-env" in cli(config, *args, code=2)
    feed.token = None
    feed.canned["/feed"] = (403, "application/json", b"{}")
    assert "HTTP 403 Forbidden" in cli(config, *args, "--token-env", "FEED_TOKEN", code=2)
    monkeypatch.delenv("FEED_TOKEN")
    text = cli(config, *args, "--token-env", "FEED_TOKEN", code=2)
    assert "Environment variable FEED_TOKEN (--token-env, feedback.token_env) is not set" in text
    assert count(config) == 0


def test_cli_retries_a_busy_api(config: Path, feed: FeedApi) -> None:
    feed.tasks = [task(0)]
    feed.failures = [503, 429]
    args = ["feedback", MODEL, "--from-url", feed.url + "/feed", *API]
    assert "1 received, 1 matched" in cli(config, *args, "--retries", "2", code=0)
    feed.failures = [503, 503]
    text = cli(config, *args, "--retries", "1", code=1)
    assert "failed after 2 attempt(s): HTTP 503 Service Unavailable" in text
    assert "/feed?since=" in text  # the resumed run asked from the stored cursor
    slow = ["feedback", MODEL, "--from-url", feed.url + "/slow", "--timeout", "0.2"]
    text = cli(config, *slow, "--retries", "0", code=1)
    assert f"GET {feed.url}/slow failed after 1 attempt(s): ReadTimeout" in text


def test_cli_rejects_a_mix_of_sources(config: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "a.jsonl"
    log_file.write_text("")
    text = cli(config, "feedback", MODEL, log_file, "--from-url", "http://x/y", code=2)
    assert "either FILE" in text
    assert "--records apply to an HTTP API pull" in cli(
        config, "feedback", MODEL, log_file, "--records", "data", code=2
    )
    assert "--follow tails a JSONL FILE" in cli(
        config, "feedback", MODEL, "--from-url", "http://x/y", "--follow", code=2
    )


# -- shadow logs: a JSONL log with its own field names ----------------------------------------


def shadow_line(i: int) -> str:
    """A line of a shadow model's log kept outside retrainer: the task, what the shadow model
    predicted, what really happened."""
    done = (T0 + timedelta(hours=i + 1)).isoformat()
    return json.dumps(
        {"task_id": f"t{i}", "shadow_prediction": 1, "actual_outcome": i % 2, "logged_at": done}
    ) + "\n"  # fmt: skip


def test_cli_shadow_log_as_feedback_with_field_mapping(config: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow_mode_logs.jsonl"
    shadow.write_text("".join(shadow_line(i) for i in range(5)))
    mapping = ["--id-field", "task_id", "--label-field", "actual_outcome"]
    args = ["feedback", MODEL, shadow, *mapping, "--time-field", "logged_at"]
    body = json.loads(cli(config, *args, "--json", code=0))
    assert (body["received"], body["matched"], body["rejected"]) == (5, 5, 0)
    with Workspace.open(config) as ws:
        frame = ws.store.actuals_frame(MODEL).sort_values("entity_id")
    assert frame["value"].tolist() == [0, 1, 0, 1, 0]  # the actual, not the shadow's guess
    assert json.loads(cli(config, *args, "--json", code=0))["duplicates"] == 5
    text = cli(config, "feedback", MODEL, shadow, "--id-field", "task", code=2)
    assert "--id-field 'task' (the field holding 'weather''s 'day_id') is not in the data" in text


def test_follow_maps_fields(make_workspace: Callable[..., Workspace], tmp_path: Path) -> None:
    ws = make_workspace()
    log(ws, ["t0", "t1"])
    shadow = tmp_path / "shadow.jsonl"
    shadow.write_text(shadow_line(0) + shadow_line(1))
    fields = FieldMap(id="task_id", label="actual_outcome", time="logged_at")
    got = follow_feedback(ws, MODEL, shadow, max_seconds=0, fields=fields)
    assert (got.received, got.matched) == (2, 2)


# -- the spec section ---------------------------------------------------------------------------


def test_spec_section_is_checked_and_options_override_it(
    config_file: Callable[..., Path],
) -> None:
    from retrainer.core.spec import load_spec

    path = config_file(feedback={"url": "http://api/feed", "cursor_param": "c"})
    with pytest.raises(ConfigError, match=r"feedback\.cursor_param needs feedback\.next"):
        load_spec(path, environ={})
    path = config_file(feedback={"url": "ftp://api/feed"})
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        load_spec(path, environ={})
    data = yaml.safe_load(path.read_text())
    data["models"][MODEL]["feedback"] = {"url": "http://api/feed", "retries": 5}
    path.write_text(yaml.safe_dump(data))
    spec = load_spec(path, environ={"RETRAINER_WEATHER__FEEDBACK__RECORDS": "items"})
    src, fields = http_source(spec.model(MODEL).feedback, MODEL, retries=1, id_field="task_id")
    assert (src.url, src.records, src.retries, fields.id) == (
        "http://api/feed",
        "items",
        1,
        "task_id",
    )
    with pytest.raises(InputError, match=r"cursor_param needs feedback\.next"):
        http_source(Feedback(), MODEL, url="http://api/x", cursor_param="c")
