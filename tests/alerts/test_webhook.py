"""Webhook alerts against a real HTTP server on loopback."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from retrainer.alerts import Alert, Alerter, safe_url
from retrainer.core.spec_sections import Alerts


class Hook:
    """A webhook receiver: records JSON bodies, answers with the queued statuses (then 200),
    and can hold every request until released."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.requests = 0
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                hook.requests += 1
                hook.arrived.set()
                hook.release.wait(10)
                status = hook.statuses.pop(0) if hook.statuses else 200
                if status == 200:
                    hook.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/SECRET"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _alert(event: str = "deploy", **fields: Any) -> Alert:
    return Alert(event, "churn", f"{event} happened", "details here", fields)  # type: ignore[arg-type]


def _alerter(*urls: str, **spec: Any) -> Alerter:
    return Alerter(Alerts(webhooks=list(urls), **spec), backoff_seconds=0.05)


def test_delivers_slack_json(hook: Hook) -> None:
    alerter = _alerter(hook.url)
    assert alerter.send(_alert("deploy", version="1.2.0"))
    assert alerter.close(5)
    assert (alerter.sent, alerter.failed, alerter.dropped) == (1, 0, 0)
    body = hook.bodies[0]
    assert body["text"] == "[churn] deploy: deploy happened"
    attachment = body["attachments"][0]
    assert attachment["text"] == "details here"
    assert attachment["fields"] == [{"title": "version", "value": "1.2.0", "short": True}]


def test_retries_after_server_errors(hook: Hook) -> None:
    hook.statuses = [500, 500]
    alerter = _alerter(hook.url, retries=3)
    alerter.send(_alert("rollback"))
    assert alerter.close(5)
    assert hook.requests == 3
    assert (alerter.sent, alerter.failed) == (1, 0)
    assert len(hook.bodies) == 1


def test_gives_up_after_retries(hook: Hook) -> None:
    hook.statuses = [503, 503, 503]
    alerter = _alerter(hook.url, retries=1)
    alerter.send(_alert("job_failed"))
    alerter.close(5)
    assert hook.requests == 2
    assert (alerter.sent, alerter.failed) == (0, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_webhook_never_blocks_or_raises(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_free_port()}/services/T0/B0/SECRET"
    alerter = _alerter(url, retries=2, timeout_seconds=1)
    with caplog.at_level(logging.INFO, logger="retrainer.alerts"):
        assert alerter.send(_alert("job_failed"))  # returns at once: nothing delivered yet
        assert alerter.failed == 0
        assert alerter.close(10)
    assert (alerter.sent, alerter.failed) == (0, 1)
    assert "SECRET" not in caplog.text
    assert f"webhook {safe_url(url)} failed after 3 attempt(s)" in caplog.text
    assert "[churn] job_failed: job_failed happened" in caplog.text


def test_send_returns_while_the_webhook_hangs_and_full_queue_drops(hook: Hook) -> None:
    hook.release.clear()  # the server holds each request
    alerter = Alerter(Alerts(webhooks=[hook.url]), queue_size=1, backoff_seconds=0.05)
    assert alerter.send(_alert("deploy"))
    assert hook.arrived.wait(5)  # the worker is stuck in the first request
    assert alerter.send(_alert("rollback"))  # fills the queue, returns anyway
    assert not alerter.send(_alert("gate_rejected"))  # queue full: dropped
    assert (alerter.sent, alerter.dropped) == (0, 1)
    hook.release.set()
    assert alerter.close(5)
    assert (alerter.sent, alerter.failed, alerter.dropped) == (2, 0, 1)
    assert [b["text"].split(":")[0] for b in hook.bodies] == ["[churn] deploy", "[churn] rollback"]


def test_only_listed_events_are_sent(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    alerter = _alerter(hook.url, events=["rollback", "critical_drift"])
    with caplog.at_level(logging.INFO, logger="retrainer.alerts"):
        assert not alerter.send(_alert("deploy"))
        assert alerter.send(_alert("critical_drift"))
        assert alerter.close(5)
    assert [b["text"] for b in hook.bodies] == ["[churn] critical_drift: critical_drift happened"]
    assert "deploy happened" in caplog.text  # still logged


def test_every_webhook_gets_it_and_closed_alerter_drops(hook: Hook) -> None:
    other = Hook()
    try:
        alerter = _alerter(hook.url, other.url)
        alerter.send(_alert("quality_failed"))
        assert alerter.close(5)
        assert alerter.sent == 2 and len(hook.bodies) == len(other.bodies) == 1
        assert not alerter.send(_alert("quality_failed"))
        assert alerter.dropped == 1
    finally:
        other.close()
    assert "SECRET" not in repr(alerter)
