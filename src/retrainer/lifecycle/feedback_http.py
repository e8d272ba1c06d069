"""Feedback pulled from an HTTP JSON API, page by page, resumed from a since-cursor.

Each page is a JSON body with the records at a dotted path (``records``; ``""``: the body is
the list) and, optionally, the next page at another (``next``): a link (absolute or relative
to the page) or, with ``cursor_param``, a cursor sent in that query parameter. The first page
is asked for with ``since_param=<cursor>``: the newest value of ``since_field`` (default: the
time field) among the records taken so far. Records are mapped (``FieldMap``), validated and
joined like any feedback (see :mod:`retrainer.lifecycle.feedback`).

Every page of a run is fetched before anything is stored; the run's actuals and the new cursor
are then stored in one transaction (the cursor is kept in the model's state, written with the
rows). So a page that is not JSON, or lacks the records, stores nothing from the run; and a
page fetched twice (an API that treats ``since`` as inclusive, a re-run) changes nothing: its
actuals are duplicates by id and time. Timeouts, connection errors, 429 and 5xx are retried
(``Retry-After`` honoured); a bearer token is read from an environment variable and never
shown; URLs are shown with their user info and secret-looking query values redacted.

>>> redact("https://bot:pw@api.example.com/feed?since=3&api_key=abc")
'https://***@api.example.com/feed?since=3&api_key=***'
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.errors import InputError, SourceUnavailable
from ..core.spec_sections import Feedback
from ..plumbing.tables import CHUNK_ROWS, LINE
from ..plumbing.workspace import Workspace
from .feedback import EMPTY, FeedbackResult, record_feedback
from .feedback_fields import FieldMap
from .ingest import MAX_REPORTED, Reject, parse_times

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpSource", "UrlFeedback", "feedback_from_url", "http_source", "redact"]

STATE_KEY = "feedback_since:"  # + a hash of the redacted URL: the model_state key of a cursor
_SECRET = ("token", "key", "secret", "password", "passwd", "signature", "sig", "auth")
_MAX_WAIT = 30.0  # seconds: the longest pause between two attempts


@dataclass(frozen=True)
class HttpSource:
    """Where and how to pull: see the module docstring and the spec's ``feedback`` section."""

    url: str
    records: str = "records"
    next: str | None = None
    cursor_param: str | None = None
    since_param: str | None = None
    since_field: str | None = None
    token_env: str | None = None
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5  # seconds before the first retry, doubled after each


@dataclass(frozen=True)
class UrlFeedback:
    """What one pull did: the feedback counts, the pages read and the cursor before/after."""

    result: FeedbackResult
    source: str  # the URL, redacted
    pages: int
    since: Any  # the cursor the run started from; None: from the start
    cursor: Any  # the cursor stored after the run

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.result.to_dict(),
            "source": self.source,
            "pages": self.pages,
            "since": self.since,
            "cursor": self.cursor,
        }


def http_source(section: Feedback, model: str, **options: Any) -> tuple[HttpSource, FieldMap]:
    """The source and field mapping to pull with: the spec's ``feedback`` section, each key
    overridden by the option of the same name when that is not None (``url``, ``records``,
    ``next``, ``cursor_param``, ``since_param``, ``since_field``, ``token_env``,
    ``timeout_seconds``, ``retries``, ``id_field``, ``label_field``, ``time_field``).

    >>> src, fields = http_source(Feedback(url="http://api/a", records="data"), "m", retries=0)
    >>> (src.url, src.records, src.retries, fields.id)
    ('http://api/a', 'data', 0, None)
    """
    unknown = sorted(set(options) - set(Feedback.model_fields))
    if unknown:
        raise TypeError(f"http_source: unknown option(s) {unknown}")
    given = {k: v for k, v in options.items() if v is not None}
    try:
        merged = Feedback.model_validate({**section.model_dump(), **given})
    except ValueError as exc:
        raise InputError(f"Feedback API options for {model!r}: {exc}") from None
    if merged.url is None:
        raise InputError(
            f"Model {model!r} has no feedback source: pass a FILE, or --from-url URL, or set "
            "feedback.url in the spec.",
            model=model,
        )
    source = HttpSource(
        url=merged.url,
        records=merged.records,
        next=merged.next,
        cursor_param=merged.cursor_param,
        since_param=merged.since_param,
        since_field=merged.since_field,
        token_env=merged.token_env,
        timeout=merged.timeout_seconds,
        retries=merged.retries,
    )
    return source, FieldMap(merged.id_field, merged.label_field, merged.time_field)


def redact(url: str) -> str:
    """``url`` with its user info and the values of secret-looking query parameters
    (token, key, secret, password, signature, auth) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = [
        (k, "***" if any(s in k.lower() for s in _SECRET) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*:,")))


def state_key(url: str) -> str:
    """The model-state key of a URL's since-cursor (the same feed behind another credential
    in the URL shares it).

    >>> state_key("http://api/feed?token=a") == state_key("http://api/feed?token=b")
    True
    """
    return STATE_KEY + hashlib.sha256(redact(url).encode()).hexdigest()[:40]


def feedback_from_url(
    ws: Workspace,
    model: str,
    source: HttpSource,
    fields: FieldMap | None = None,
    *,
    since: Any = None,
) -> UrlFeedback:
    """Pull the actuals of ``source`` from its stored since-cursor (or ``since`` when given)
    to its last page and store them, with the new cursor, in one transaction."""
    import httpx

    spec = ws.model_spec(model)
    fields = fields or FieldMap()
    shown = redact(source.url)
    key = state_key(source.url)
    if isinstance(since, str):
        since = _number_or_text(since)
    if since is None:
        saved = ws.store.get_state(model, key)
        since = None if saved is None else saved[1].get("cursor")
    since_field = source.since_field or fields.source_name(spec, spec.time_column)
    headers = {"Accept": "application/json"}
    if source.token_env:
        token = os.environ.get(source.token_env, "")
        if not token:
            raise InputError(
                f"Environment variable {source.token_env} (--token-env, feedback.token_env) is "
                "not set or empty; export the API's bearer token in it, or drop the option "
                "for an API without authentication.",
                variable=source.token_env,
            )
        headers["Authorization"] = f"Bearer {token}"

    objects: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    pages = 0
    with httpx.Client(timeout=source.timeout, follow_redirects=True, headers=headers) as client:
        for page, records in _pages(client, source, since):
            pages += 1
            for rec in records:
                n = len(objects) + len(rejects) + 1
                if isinstance(rec, dict):
                    objects.append({**rec, LINE: n})
                else:
                    rejects.append(Reject(n, f"not a JSON object (in {page})"))
    cursor = _newest(
        [since, *(o[since_field] for o in objects if o.get(since_field) is not None)],
        since_field,
        shown,
    )
    result = EMPTY
    if rejects and not objects:
        result = FeedbackResult(len(rejects), 0, 0, 0, len(rejects), rejects[:MAX_REPORTED])
    if objects:
        result = _store(ws, model, objects, rejects, fields, shown, key, since_field, cursor)
    return UrlFeedback(result, shown, pages, since, cursor)


def _store(
    ws: Workspace,
    model: str,
    objects: list[dict[str, Any]],
    rejects: list[Reject],
    fields: FieldMap,
    shown: str,
    key: str,
    since_field: str,
    cursor: Any,
) -> FeedbackResult:
    """The run's records and its cursor, in one transaction, ``CHUNK_ROWS`` at a time."""
    import pandas as pd

    state = {"url": shown, "field": since_field, "cursor": cursor}
    if ws.model_spec(model).is_fleet:  # one transaction over the members the records name
        from .fleet_feedback import fleet_feedback_frame

        return fleet_feedback_frame(
            ws, model, pd.DataFrame.from_records(objects), where=shown, rejects=rejects,
            fields=fields, state=None if cursor is None else (key, state),
        )  # fmt: skip
    total = EMPTY
    with ws.store.write(model) as conn:
        for lo in range(0, len(objects), CHUNK_ROWS):
            frame = pd.DataFrame.from_records(objects[lo : lo + CHUNK_ROWS])
            first = rejects if lo == 0 else []
            total += record_feedback(
                ws, model, frame, where=shown, rejects=first, conn=conn, fields=fields
            )
        if cursor is not None:
            ws.store.put_state(model, key, None, state, conn=conn)
    return total


def _pages(client: httpx.Client, source: HttpSource, since: Any) -> Iterator[tuple[str, list[Any]]]:
    """(the page's redacted URL and number, its records) for each page, first to last."""
    import httpx

    first = httpx.URL(source.url)
    if since is not None and source.since_param:
        first = first.copy_set_param(source.since_param, str(since))
    url, seen, n = first, set(), 0
    while True:
        n += 1
        seen.add(str(url))
        page = f"{redact(str(url))} (page {n})"
        body = _json(_get(client, url, source), page, source)
        records = _dig(body, source.records)
        if not isinstance(records, list):
            raise InputError(_no_records(page, source.records, body, records), page=page)
        yield page, records
        nxt = _dig(body, source.next) if source.next else None
        if nxt is None or nxt is _MISSING or nxt == "":
            return
        if source.cursor_param:
            url = first.copy_set_param(source.cursor_param, str(nxt))
        elif isinstance(nxt, str):
            url = url.join(nxt)
        else:
            raise InputError(
                f"{page}: the next-page field {source.next!r} holds {nxt!r}, not a link. If it "
                "is a cursor, name the query parameter it goes in with --cursor-param "
                "(feedback.cursor_param).",
                page=page,
            )
        if str(url) in seen:
            raise InputError(
                f"{page}: its next page {redact(str(url))} was already read in this run; the "
                f"API's {source.next!r} field loops. Check --next (feedback.next).",
                page=page,
            )


def _get(client: httpx.Client, url: httpx.URL, source: HttpSource) -> httpx.Response:
    """One page, retried after a timeout, a connection error, 429 or 5xx."""
    import httpx

    shown = redact(str(url))
    attempts = source.retries + 1
    for attempt in range(attempts):
        wait = source.backoff * 2**attempt
        try:
            resp = client.get(url)
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}".replace(str(url), shown).rstrip(".")
        else:
            status = resp.status_code
            if status in (401, 403):
                raise InputError(_refused(shown, resp, source), url=shown, status=status)
            if status < 400:
                return resp
            problem = f"HTTP {status} {resp.reason_phrase}"
            if status != 429 and status < 500:
                raise SourceUnavailable(
                    f"GET {shown}: {problem}. Check the URL (--from-url, feedback.url).",
                    url=shown,
                    status=status,
                )
            after = resp.headers.get("Retry-After", "")
            if after.strip().isdigit():
                wait = float(after)
        if attempt + 1 < attempts:
            time.sleep(min(wait, _MAX_WAIT))
    raise SourceUnavailable(
        f"GET {shown} failed after {attempts} attempt(s): {problem}. Check that the URL is "
        "right and the API is up; --timeout and --retries set how long to wait.",
        url=shown,
    )


def _refused(shown: str, resp: httpx.Response, source: HttpSource) -> str:
    how = f"the bearer token in ${source.token_env}" if source.token_env else "no token"
    said = resp.text[:200].strip()
    token = os.environ.get(source.token_env or "", "")
    if token:
        said = said.replace(token, "***")
    said = f" The API said: {said!r}." if said else ""
    if resp.status_code == 401:
        fix = (
            f"Check the token in {source.token_env}."
            if source.token_env
            else "Set --token-env (feedback.token_env) to the variable holding its token."
        )
        return f"GET {shown}: HTTP 401 Unauthorized with {how}.{said} {fix}"
    return (
        f"GET {shown}: HTTP 403 Forbidden with {how}: the credentials are not allowed to read "
        f"this API.{said} Use a token with read access to it."
    )


def _json(resp: httpx.Response, page: str, source: HttpSource) -> Any:
    import json

    try:
        return json.loads(resp.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = resp.headers.get("Content-Type", "no content type")
        raise InputError(
            f"{page}: the response ({kind}) is not JSON ({getattr(exc, 'msg', exc)}); expected "
            f"a JSON body with the records at {source.records!r}. Check the URL.",
            page=page,
        ) from None


def _number_or_text(text: str) -> Any:
    """A cursor given on the command line: a number when it reads as one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _dig(body: Any, path: str) -> Any:
    """The value at a dotted path of a JSON body (``""``: the body); ``_MISSING`` if absent."""
    node = body
    for part in path.split(".") if path else ():
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _no_records(page: str, path: str, body: Any, found: Any) -> str:
    fix = "Set --records (feedback.records) to the dotted path of the list of records"
    if found is _MISSING:
        keys = sorted(body) if isinstance(body, Mapping) else type(body).__name__
        return f"{page}: the JSON body has no {path!r} (it has {keys}). {fix}."
    where = f"at {path!r}" if path else "the body"
    return f"{page}: {where} is a {type(found).__name__}, not a list of records. {fix}."


def _newest(values: list[Any], field: str, shown: str) -> Any:
    """The newest of cursor values: numbers by value; texts by time when they parse as times
    (a text that does not is a rejected record's), else as text. None when there is none.

    >>> _newest(["2030-01-02T00:00:00Z", "not a time", "2030-01-01T00:00:00Z"], "t", "u")
    '2030-01-02T00:00:00Z'
    >>> _newest(["01J2", "01J9", None], "id", "u"), _newest([3, 12.5], "seq", "u")
    ('01J9', 12.5)
    """
    import pandas as pd

    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return max(vals)
    if all(isinstance(v, str) for v in vals):
        times = parse_times(pd.Series(vals, dtype=object))
        if times.notna().any():  # the ones that do not parse are rejected records
            return vals[int(times.argmax(skipna=True))]
        return max(vals)
    kinds = sorted({type(v).__name__ for v in vals})
    raise InputError(
        f"{shown}: the since-cursor field {field!r} holds values of several kinds ({kinds}, "
        f"e.g. {vals[-1]!r}); it must hold numbers, or times, or texts. Set --since-field "
        "(feedback.since_field) to a field that does.",
        field=field,
    )
