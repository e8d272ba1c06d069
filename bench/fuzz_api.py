"""Fuzz of the REST API: ``REQUESTS`` property-based requests to every route of the app's
OpenAPI schema (and a few methods and paths it does not list), with and without the token.

The requests are drawn by the fuzz test itself (tests/serving/test_fuzz.py,
``test_every_route_answers_fuzzed_requests_without_a_5xx``: random path parameters with path
characters, random query parameters, random and near-valid bodies, random content types and
origins) against a real server on loopback; this bench runs it with ``FUZZ_API_REQUESTS`` set
and reads the record it writes. The property: no 5xx, and every 4xx body has ``error`` and a
non-empty ``message``. Writes docs/reliability-fuzz.md (full run only) and returns a summary
for docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .common import REPO, WORK, machine

REQUESTS = 10_000
QUICK_REQUESTS = 1_000
PAGE = REPO / "docs" / "reliability-fuzz.md"
TEST = "tests/serving/test_fuzz.py"


def fuzz(requests: int) -> tuple[dict[str, Any], int, str]:
    """Run the fuzz test for ``requests`` examples: (its record, pytest's exit code, output)."""
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        report = Path(tmp) / "fuzz.json"
        env = {**os.environ, "FUZZ_API_REQUESTS": str(requests), "FUZZ_API_REPORT": str(report)}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", TEST, "-q", "-x", "-k", "every_route"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        record = json.loads(report.read_text()) if report.exists() else {"requests": []}
    return record, proc.returncode, proc.stdout[-3000:] + proc.stderr[-2000:]


def table(record: dict[str, Any]) -> str:
    """One row per route and method: requests, with the token, and answers by class."""
    rows: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in record["requests"]:
        c = rows[(r["route"], r["method"])]
        c["requests"] += 1
        c[f"token {r['token']}"] += 1
        c[f"{r['status'] // 100}xx"] += 1
        c[str(r["status"])] += 1
    lines = [
        "| route | method | requests | right / wrong / no token | 2xx | 3xx | 4xx | 5xx | "
        "4xx by status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (route, method), c in sorted(rows.items()):
        fours = sorted(((n, s) for s, n in c.items() if s.isdigit() and s.startswith("4")),
                       reverse=True)  # fmt: skip
        common = ", ".join(f"{s} ×{n}" for n, s in fours) or "—"
        tokens = f"{c['token right']} / {c['token wrong']} / {c['token none']}"
        lines.append(
            f"| `{route}` | {method} | {c['requests']} | {tokens} | {c['2xx']} | "
            f"{c['3xx']} | {c['4xx']} | {c['5xx']} | {common} |"
        )
    return "\n".join(lines)


def summary(record: dict[str, Any], code: int) -> dict[str, Any]:
    reqs = record["requests"]
    statuses = Counter(r["status"] for r in reqs)
    return {
        "requests": len(reqs),
        "routes": len({(r["route"], r["method"]) for r in reqs}),
        "tokens": Counter(r["token"] for r in reqs),
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "4xx": sum(n for s, n in statuses.items() if 400 <= s < 500),
        "seconds": round(record.get("seconds", 0.0), 1),
        "passed": code == 0,
    }


def page(record: dict[str, Any], s: dict[str, Any], output: str) -> str:
    verdict = (
        "**0 × 5xx; every 4xx named its problem.**"
        if s["passed"] and s["5xx"] == 0
        else f"**The property failed** (pytest's output below).\n\n```\n{output}\n```"
    )
    return (
        "# Reliability: a fuzz of the REST API\n\n"
        f"Written by `python -m bench --only fuzz` on {dt.date.today().isoformat()} "
        f"({machine()}).\n\n"
        f"{s['requests']} requests drawn by Hypothesis over {s['routes']} routes and methods "
        "(every operation of the app's OpenAPI schema, and PUT/DELETE/OPTIONS and paths it does "
        f"not list) against a real server on loopback with a token set: {s['tokens']['right']} "
        f"with the right token, {s['tokens']['wrong']} with a wrong one (or another scheme), "
        f"{s['tokens']['none']} with none; "
        f"{s['seconds']} s. Path parameters include `..`, `/`, `%2e%2e`, NUL and lone "
        "surrogates; query parameters include durations of 900000 days and 10^30 days; bodies "
        "are random JSON, near-valid bodies of every route (huge `days_back`, versions with "
        "path characters, feedback ids with NUL and lone surrogates), JSON nested up to 5,000 "
        "levels and random bytes, under random content types and origins.\n\n"
        "The property checked for every answer: the status is below 500, and a 4xx body has "
        f"`error` and a non-empty `message`.\n\n{verdict}\n\n"
        f"{s['4xx']} answers were 4xx. By route:\n\n{table(record)}\n\n"
        "The test is `tests/serving/test_fuzz.py::"
        "test_every_route_answers_fuzzed_requests_without_a_5xx`; `make test` runs 300 "
        "requests of it.\n"
    )


def run(quick: bool) -> str:
    started = time.perf_counter()
    n = QUICK_REQUESTS if quick else REQUESTS
    record, code, output = fuzz(n)
    s = summary(record, code)
    if not quick:
        PAGE.write_text(page(record, s, output))
    where = "" if quick else " (table in [reliability-fuzz.md](reliability-fuzz.md))"
    status = "passed" if s["passed"] else f"FAILED (pytest exit {code})"
    return (
        "## REST API fuzz\n\n"
        f"{s['requests']} fuzzed requests over {s['routes']} routes and methods "
        f"({s['tokens']['right']} with the right token, {s['tokens']['wrong']} with a wrong one, "
        f"{s['tokens']['none']} with none): {s['5xx']} × 5xx, {s['4xx']} × 4xx, "
        f"every 4xx with `error` and `message`; {status}; "
        f"{time.perf_counter() - started:.0f} s in all{where}.\n"
    )
