"""The dashboard with a fleet of many members, side by side with the per-member way.

    python -m bench.fleet_ui [--quick]     # prints its table (docs/ui.md quotes it)

One member is trained for real; its champion is registered again for every other member
(``tests/fleet/fleet_members.py``), with ``DECISIONS`` decisions each. A server on loopback,
then the median of a few loads of:
the overview (``/ui``: the fleet as one row, two queries) and its polled JSON; the fleet page
(every member's roles, versions and training rows from ``store.overview``, their newest
decisions in one query, one page of 50 drawn) sorted two ways; a member's own model page.
Side by side: the overview as it was before fleets had a row, one row per member with its
monitor, decisions and drift read each (timed on 100 members, times the members).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from .common import seconds, table
from .fleet_serving import _fixtures, _median, _Server

SAMPLE = 100  # members the per-member overview is timed on
DECISIONS = 5  # stored per member


def _decisions(ws: Any, names: list[str]) -> None:
    """``DECISIONS`` decisions per member, in one transaction (as many maintain turns leave)."""
    from retrainer.core.clock import utcnow
    from retrainer.store import schema as t

    now = utcnow()
    numbers = {"live_metric": 1.1, "baseline_metric": 1.0, "degradation": 0.1, "data_drift": False}
    rows = [
        {"model": m, "action": "nothing", "reasons": ["within limits"], "numbers": numbers,
         "taken_at": now - timedelta(days=k, minutes=i), "dry_run": False, "outcome": "done"}
        for k in range(DECISIONS) for i, m in enumerate(names)
    ]  # fmt: skip
    with ws.store.write() as conn:
        conn.execute(t.decisions.insert(), rows)


def measure(members: int) -> dict[str, float]:
    from retrainer.core.spec import parse_spec
    from retrainer.lifecycle.ingest import ingest_frame
    from retrainer.lifecycle.train import train
    from retrainer.plumbing.workspace import Workspace

    data, fm = _fixtures()
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spec = parse_spec(data.fleet_spec(f"sqlite:///{d / 'ws.db'}", str(d / "art")), environ={})
        with Workspace(spec) as ws:
            ingest_frame(ws, data.FLEET, data.fleet_rows(["s0"], 120))
            train(ws, "sales.s0", deploy=True)
            names = fm.register_members(ws, data.FLEET, "sales.s0",
                                        [f"e{i}" for i in range(members - 1)])  # fmt: skip
            _decisions(ws, names)
            server = _Server(ws, d / "spool")
            try:
                http = server.http
                page = http.get("/ui")
                assert page.status_code == 200 and page.text.count("data-fleet=") == 1
                for key, path in (
                    ("overview", "/ui"),
                    ("overview_json", "/ui/api/overview"),
                    ("fleet", "/ui/fleets/sales"),
                    ("fleet_sorted", "/ui/fleets/sales?sort=decision&order=desc&page=7"),
                    ("fleet_json", "/ui/api/fleets/sales?sort=rows&order=desc"),
                    ("member", f"/ui/models/{names[len(names) // 2]}"),
                ):
                    assert http.get(path).status_code == 200, path
                    out[key] = _median(lambda p=path: http.get(p), 7)  # type: ignore[misc]
                snaps = server.app.state.retrainer.cache["ui"]
                sample = names[:SAMPLE]
                t = time.perf_counter()
                for m in sample:
                    snaps._row(m)  # what the overview read per member before fleets had a row
                out["per_member"] = (time.perf_counter() - t) / len(sample) * members
            finally:
                server.close()
    return out


def run(quick: bool) -> str:
    members = 200 if quick else 1000
    m = measure(members)
    ms = seconds
    per = f"{ms(m['per_member'])} (a row per member, each read alone; {SAMPLE} timed)"
    rows = [
        ["GET /ui (the fleet one row)", ms(m["overview"]), per],
        ["GET /ui/api/overview (its poll)", ms(m["overview_json"]), per],
        [f"GET /ui/fleets/sales (50 of {members:,} members)", ms(m["fleet"]), "–"],
        ["fleet page sorted by last decision, page 7", ms(m["fleet_sorted"]), "–"],
        ["GET /ui/api/fleets/sales (its poll)", ms(m["fleet_json"]), "–"],
        ["a member's model page (its report data cached)", ms(m["member"]), "–"],
    ]
    return (
        f"## The dashboard with a fleet ({members} members)\n\n"
        "One LightGBM member trained, registered again as every other member's champion; "
        f"{DECISIONS} decisions stored per member; SQLite; a server on loopback "
        "(`bench/fleet_ui.py`). Medians of 7 loads.\n\n"
        + table(["what", "retrainer", "side by side"], rows)
        + "\n"
    )


def main(argv: list[str]) -> None:
    print(run("--quick" in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
