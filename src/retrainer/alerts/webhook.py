"""Alerts: a log line for every alert, and a Slack-compatible webhook POST for the events a
model's spec lists.

Delivery runs on one background thread fed by a bounded queue, so ``Alerter.send`` never
blocks and never raises: a full queue drops the alert (counted in ``dropped``), an
unreachable webhook is retried with exponential backoff and then counted in ``failed``.
Webhook URLs are secrets (the path of a Slack webhook is its key), so logs show ``safe_url``.

>>> from retrainer.core.spec_sections import Alerts
>>> with Alerter(Alerts()) as alerter:  # no webhooks: log only
...     alerter.send(Alert("deploy", "churn", "churn 1.2.0 deployed", "Gate passed."))
False
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from ..core.clock import utcnow
from ..core.errors import InputError
from ..core.spec_sections import ALERT_EVENTS, AlertEvent, Alerts

log = logging.getLogger("retrainer.alerts")

Event = AlertEvent  # one list of event names: the spec's (alerts.events is checked against it)
EVENTS: Final[tuple[str, ...]] = ALERT_EVENTS
_COLORS = {
    "deploy": "good",
    "challenger_started": "good",
    "retrained": "good",
    "rollback": "warning",
    "gate_rejected": "warning",
    "training_shrunk": "warning",
}
_STOP: Final = object()


def safe_url(url: str) -> str:
    """Scheme and host (and port) of a URL; the path, query and credentials are dropped.

    >>> safe_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    'https://hooks.slack.com'
    >>> safe_url("http://user:pw@127.0.0.1:8080/hook?token=abc")
    'http://127.0.0.1:8080'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else "<invalid url>"


@dataclass(frozen=True)
class Alert:
    """Something an operator should hear about. ``fields`` become the attachment's fields.

    >>> Alert("deploy", "churn", "t", "x").event
    'deploy'
    >>> Alert("deployed", "churn", "t", "x")
    Traceback (most recent call last):
    ...
    retrainer.core.errors.InputError: Alert event 'deployed' is not known. Expected one of: \
deploy, challenger_started, rollback, gate_rejected, retrained, training_shrunk, \
critical_degradation, critical_drift, quality_failed, job_failed, reload_failed, \
naive_better.
    """

    event: Event
    model: str
    title: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise InputError(
                f"Alert event {self.event!r} is not known. Expected one of: {', '.join(EVENTS)}.",
                event=self.event,
            )


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body for a Slack-compatible incoming webhook: text plus one attachment.

    >>> body = slack_payload(Alert("rollback", "churn", "Rolled back", "Live AUC fell.",
    ...                            {"from": "1.3.0", "to": "1.2.0"}, datetime(2024, 1, 1)))
    >>> body["text"]
    '[churn] rollback: Rolled back'
    >>> body["attachments"][0]["fields"][0]
    {'title': 'from', 'value': '1.3.0', 'short': True}
    """
    fields = [{"title": k, "value": str(v), "short": True} for k, v in alert.fields.items()]
    return {
        "text": f"[{alert.model}] {alert.event}: {alert.title}",
        "attachments": [
            {
                "color": _COLORS.get(alert.event, "danger"),
                "title": alert.title,
                "text": alert.text,
                "fields": fields,
                "footer": f"retrainer · {alert.model} · {alert.event}",
                "ts": int(alert.at.replace(tzinfo=UTC).timestamp()),
            }
        ],
    }


class Alerter:
    """Send alerts for one model's ``alerts`` section. Close it (or use ``with``) to flush.

    ``sent`` and ``failed`` count webhook deliveries (one per alert and URL); ``dropped``
    counts alerts not queued because the queue was full or the alerter was closed.
    """

    def __init__(
        self,
        spec_alerts: Alerts,
        *,
        queue_size: int = 1000,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self.spec_alerts = spec_alerts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        urls = ", ".join(safe_url(u) for u in self.spec_alerts.webhooks)
        return f"Alerter([{urls}], sent={self.sent}, failed={self.failed}, dropped={self.dropped})"

    def __enter__(self) -> Alerter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def send(self, alert: Alert) -> bool:
        """Log the alert and queue it for the webhooks when its event is enabled. Returns
        True when queued; never blocks and never raises."""
        level = logging.INFO if _COLORS.get(alert.event) == "good" else logging.WARNING
        log.log(level, "[%s] %s: %s. %s", alert.model, alert.event, alert.title, alert.text)
        if not self.spec_alerts.webhooks or alert.event not in self.spec_alerts.events:
            return False
        with self._lock:
            if self._closed:
                self.dropped += 1
                log.warning("Alert %r dropped: the alerter is closed.", alert.title)
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="alerts", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.warning(
                "Alert %r dropped: %d alerts already queued.", alert.title, self._queue.maxsize
            )
            return False
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Stop taking alerts and deliver the queued ones within ``timeout`` seconds. True
        when everything queued was handled; after the timeout, pending retries stop."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            self._abort.set()
            log.warning("Alerter closed with alerts still pending after %gs.", timeout)
            return False
        return True

    # ---- worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        with httpx.Client(timeout=self.spec_alerts.timeout_seconds) as client:
            while True:
                item = self._queue.get()
                if item is _STOP or not isinstance(item, Alert):
                    return
                if self._abort.is_set():  # closed with a timeout that ran out
                    with self._lock:
                        self.dropped += 1
                    continue
                body = slack_payload(item)
                for url in self.spec_alerts.webhooks:
                    ok = self._deliver(client, url, body, item)
                    with self._lock:
                        if ok:
                            self.sent += 1
                        else:
                            self.failed += 1

    def _deliver(self, client: httpx.Client, url: str, body: dict[str, Any], alert: Alert) -> bool:
        attempts = 1 + self.spec_alerts.retries
        problem = ""
        for attempt in range(attempts):
            if attempt and self._abort.wait(
                min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
            ):
                break
            try:
                response = client.post(url, json=body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {str(exc).replace(url, safe_url(url))}"
                continue
            if response.is_success:
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the request itself is wrong; retrying will not help
        log.warning(
            "Alert %r to webhook %s failed after %d attempt(s): %s.",
            alert.title,
            safe_url(url),
            attempt + 1,
            problem or "aborted on close",
        )
        return False
