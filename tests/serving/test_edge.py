"""The service's edge (serving/edge.py, serving/inputs.py): what is refused before a route
reads a body or stores a value.

- The token is checked before the body is read: an unauthenticated 300 MB POST (with a
  Content-Length, or chunked) is a 401 and the server's memory barely moves; a body over the
  route's limit is a 413 naming the setting.
- Cross-site requests: a mutating route takes JSON only (415) and no foreign Origin (403), so
  a browser page cannot make a token-less server roll back or train.
- Inputs: entity ids and feedback ids with a lone surrogate, NUL or over 128 characters, huge
  windows and days, versions with path characters, JSON nested too deeply: 422 naming them.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from servehelp import Served, answers, free_port, spec_dict
from typer.testing import CliRunner

from retrainer.cli.main import app as cli
from retrainer.datasets import WEATHER_FEATURES
from retrainer.serving.app import create_app
from waits import SERVER_START, wait_until

ROW = dict.fromkeys(WEATHER_FEATURES, 0.1)
AUTH = {"Authorization": "Bearer s3cret"}
MB = 2**20


# ---- the token before the body; body limits ------------------------------------------------


@pytest.fixture(scope="module")
def served_process(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`retrainer serve` in its own process (its memory is measured), with a token and a
    1 MiB feedback limit for weather."""
    folder = tmp_path_factory.mktemp("proc")
    shutil.copy(trained / "ws.db", folder / "ws.db")
    shutil.copytree(trained / "artifacts", folder / "artifacts")
    spec = spec_dict(folder)
    spec["models"]["weather"]["serving"]["max_feedback_bytes"] = MB
    (folder / "retrainer.yaml").write_text(yaml.safe_dump(spec))
    port = free_port()
    exe = Path(sys.executable).with_name("retrainer")
    env = {**os.environ, "RETRAINER_API_TOKEN": "s3cret"}
    proc = subprocess.Popen(
        [str(exe), "-c", str(folder / "retrainer.yaml"), "serve", "--port", str(port),
         "--no-scheduler", "--no-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        return answers(url)

    wait_until(ready, f"`retrainer serve` to answer {url}/ready", SERVER_START)
    yield proc, port
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def raw_post(port: int, path: str, headers: dict[str, str], total: int, chunked: bool) -> bytes:
    """POST ``total`` bytes (a JSON array of zeros) on a raw socket, 1 MiB at a time, until
    the server answers; return the answer's head and body as they came."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += ["Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    block = b"[" + b"0," * (MB // 2 - 1) + b"0"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        try:
            while sent < total and not select.select([s], [], [], 0)[0]:
                s.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: its answer is waiting
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_unauthenticated_huge_post_is_refused_before_its_body_is_read(
    served_process: Any, chunked: bool
) -> None:
    proc, port = served_process
    before = rss_mb(proc.pid)
    answer = raw_post(port, "/v1/models/weather/feedback", {}, 300 * MB, chunked)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
    assert b'"unauthorized"' in answer and b"RETRAINER_API_TOKEN" in answer
    grown = rss_mb(proc.pid) - before
    assert grown < 200, f"the server grew by {grown:.0f} MB answering a 401"
    assert proc.poll() is None


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413_naming_the_setting(
    served_process: Any, chunked: bool
) -> None:
    proc, port = served_process
    before = rss_mb(proc.pid)
    answer = raw_post(port, "/v1/models/weather/feedback", AUTH, 300 * MB, chunked)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"payload_too_large"' in answer and b"serving.max_feedback_bytes" in answer
    assert f"limit of {MB} bytes".encode() in answer
    assert rss_mb(proc.pid) - before < 200
    # every other admin route: a small fixed limit
    r = httpx.post(f"http://127.0.0.1:{port}/v1/models/weather/deploy", headers=AUTH,
                   json={"version": "1.0.0", "reason": "x" * 100_000}, timeout=30)  # fmt: skip
    assert r.status_code == 413 and "limit of 65536 bytes" in r.json()["message"]


# ---- cross-site requests to a server without a token -------------------------------------


@pytest.fixture(scope="module")
def open_server(workspace_copy: Path) -> Iterator[Served]:
    """A server without a token, as `retrainer serve` on loopback runs by default."""
    app = create_app(workspace_copy, token=None, log_predictions=False, scheduler=False)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start in 60 s"
        time.sleep(0.02)
    yield Served(f"http://127.0.0.1:{port}", app, workspace_copy)
    srv.should_exit = True
    thread.join(30)


def test_a_browser_simple_request_cannot_roll_back_or_train(open_server: Served) -> None:
    state = open_server.state
    champion = state.ws.store.roles("weather").champion
    evil = {"Origin": "https://evil.test"}
    with open_server.client() as c:
        for route in ("rollback", "train", "deploy", "maintain", "feedback"):
            path = f"/v1/models/weather/{route}"
            # a form or fetch(no-cors) from another site: text/plain, a foreign origin
            plain = {"Content-Type": "text/plain"}
            r = c.post(path, content=b'{"to": "1.1.0"}', headers={**plain, **evil})
            assert r.status_code == 403, r.text
            assert (
                "evil.test" in r.json()["message"] and "cors.allow_origins" in r.json()["message"]
            )
            # no origin (an old browser, a script): still not JSON
            r = c.post(path, content=b"", headers=plain)
            assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
            assert "application/json" in r.json()["message"]
            assert c.post(path).status_code == 415  # no body, no content type
            # JSON from another site (it would need a CORS preflight; refused all the same)
            assert c.post(path, json={}, headers=evil).status_code == 403
            referer = {"Referer": "https://evil.test/page.html"}
            assert c.post(path, json={}, headers=referer).status_code == 403
            # DNS rebinding: a foreign name resolving to 127.0.0.1, with the right port
            port = open_server.url.rsplit(":", 1)[1]
            rebound = {"Origin": f"http://evil.test:{port}", "Host": f"evil.test:{port}"}
            assert c.post(path, json={}, headers=rebound).status_code == 403
        assert state.ws.store.roles("weather").champion == champion
        assert state.jobs._jobs == {}  # no training was started
        # the server's own pages (/docs calls it from its own origin) and scripts still work
        for own in (open_server.url, open_server.url.replace("127.0.0.1", "localhost")):
            host = own.split("//", 1)[1]
            r = c.post("/v1/models/weather/maintain", json={"dry_run": True},
                       headers={"Origin": own, "Host": host})  # fmt: skip
            assert r.status_code == 200, r.text
        assert c.post("/v1/models/weather/maintain", json={"dry_run": True}).status_code == 200
        assert c.get("/docs").status_code == 200
        assert (
            c.post("/v1/models/weather/predict", json={"row": ROW}, headers=evil).status_code == 200
        )


def test_serve_refuses_a_public_host_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAINER_API_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "--insecure" in result.output and "RETRAINER_API_TOKEN" in result.output


# ---- inputs checked at the edge ----------------------------------------------------------


def _raw(server: Served, path: str, text: str, **kw: Any) -> httpx.Response:
    """POST JSON text as written (escapes such as \\udc80 reach the server's parser)."""
    with server.client() as c:
        return c.post(path, content=text.encode(), headers={"Content-Type": "application/json",
                      **kw.pop("headers", {})}, **kw)  # fmt: skip


BAD_IDS = {  # the id as JSON text; the problem named by predict and by feedback
    "lone surrogate": ('"\\udc80"', "lone surrogate", "lone surrogate"),
    "NUL": ('"a\\u0000b"', "NUL", "NUL"),
    "too long": (json.dumps("x" * 129), "longer than 128", "longer than 128"),
    # orjson reads an integer beyond 64 bits as a float
    "long integer": ("1" + "0" * 200, "string or an integer, got float", "longer than 128"),
}


@pytest.mark.parametrize("case", sorted(BAD_IDS))
def test_entity_ids_that_cannot_be_stored_are_422_naming_row_and_field(
    server: Served, case: str
) -> None:
    eid, problem, feedback_problem = BAD_IDS[case]
    good = json.dumps({**ROW, "entity_id": "ok"})
    bad = json.dumps({**ROW, "entity_id": "EID"}).replace('"EID"', eid)
    r = _raw(server, "/v1/models/weather/predict", f'{{"rows": [{good}, {bad}]}}')
    assert r.status_code == 422, r.text
    first = r.json()["details"]["errors"][0]
    assert (first["row"], first["field"]) == (1, "entity_id") and problem in first["problem"]
    actuals = f'{{"actuals": [{{"day_id": "ok", "rain": 1}}, {{"day_id": {eid}, "rain": 1}}]}}'
    r = _raw(server, "/v1/models/weather/feedback", actuals, headers=AUTH)
    assert r.status_code == 422, r.text
    first = r.json()["details"]["errors"][0]
    assert (first["row"], first["field"]) == (1, "day_id")
    assert feedback_problem in first["problem"]
    assert "row 1" in r.json()["message"]


def test_numbers_and_durations_are_bounded(server: Served) -> None:
    with server.client() as c:
        for window in ("900000d", "9" * 400 + "d", "0d", "soon"):
            r = c.get("/v1/models/weather/drift", params={"window": window})  # no token
            assert r.status_code == 422, (window, r.text)
            assert "window" in r.json()["message"]
        for days in (10**12, 2**70, 0):
            r = c.post("/v1/models/weather/train", json={"days_back": days}, headers=AUTH)
            assert r.status_code == 422, (days, r.text)
            assert r.json()["details"]["errors"][0]["field"] == "days_back"
        for version in ("../../x", "1.0.0\x00", "\udc80"):
            body = json.dumps({"version": version}).encode()
            r = c.post("/v1/models/weather/deploy", content=body,
                       headers={**AUTH, "Content-Type": "application/json"})  # fmt: skip
            assert r.status_code == 422, (version, r.text)
            assert r.json()["details"]["errors"][0]["field"] == "version"
        r = c.post("/v1/models/weather/rollback", json={"reason": "a\x00b"}, headers=AUTH)
        assert r.status_code == 422 and "NUL" in r.text


def test_json_nested_too_deeply_is_422(server: Served) -> None:
    deep = "[" * 5000 + "]" * 5000
    r = _raw(server, "/v1/models/weather/feedback", f'{{"actuals": {deep}}}', headers=AUTH)
    assert r.status_code == 422, r.text
    assert "nested too deeply" in r.json()["message"]
    r = _raw(server, "/v1/models/weather/predict", f'{{"rows": {deep}}}')
    assert r.status_code == 422, r.text


def test_every_route_of_the_schema_needs_the_token_but_the_open_ones(server: Served) -> None:
    """Deny by default: with auth.protect_reads every operation of the OpenAPI schema but
    /health, /ready and the docs is a 401 without the token (mutating ones always)."""
    ops = [(m.upper(), p) for p, item in server.app.openapi()["paths"].items() for m in item]
    assert len(ops) >= 12
    open_paths = {"/health", "/ready"}
    server.state.protect_reads = True
    try:
        with server.client() as c:
            for method, path in ops:
                url = path.replace("{name}", "weather").replace("{job_id}", "j")
                r = c.request(method, url, json={})
                if path in open_paths:
                    assert r.status_code in (200, 503), (method, path, r.text)
                else:
                    assert r.status_code == 401, (method, path, r.text)
                    assert r.headers["www-authenticate"] == "Bearer"
                    wrong = c.request(method, url, json={}, headers={"Authorization": "Bearer x"})
                    assert wrong.status_code == 403, (method, path, wrong.text)
            assert c.get("/openapi.json").status_code == 200 and c.get("/docs").status_code == 200
    finally:
        server.state.protect_reads = False
