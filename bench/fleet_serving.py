"""Serving a fleet of many members: what the server costs per member, side by side with the
floor or the per-member way.

    python -m bench.fleet_serving [--quick]     # writes its section of docs/benchmarks.md

One member is trained for real; its champion is registered again for every other member
(``tests/fleet/fleet_members.py``, the fixture the tests use). A server on loopback, then:

- the hot-reload poll of the fleet (one query, ``store.member_roles``) against polling each
  member's revision, as a plain model is polled (one query each);
- the first poll at start (members listed, champions loaded on first request) against
  loading every member's champion (measured on a sample, times the members);
- ``GET /v1/models`` listing every member, against the floor: an HTTP round trip that does
  nothing (``/health``) plus serializing the same body;
- 100 rows of 10 entities to the fleet's route, against the same rows sent to each member's
  own route (10 requests).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import REPO, seconds, table

ROWS_PER_ENTITY, ENTITIES = 10, 10


def _fixtures() -> tuple[Any, Any]:
    folder = str(REPO / "tests" / "fleet")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import fleet_data
    import fleet_members

    return fleet_data, fleet_members


def _median(f: Callable[[], Any], k: int) -> float:
    times = []
    for _ in range(k):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class _Server:
    def __init__(self, ws: Any, spool: Path) -> None:
        import socket

        import httpx
        import uvicorn

        from retrainer.serving.app import create_app

        self.app = create_app(ws, spool=spool, scheduler=False, log_writer="thread")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        self.srv = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.srv.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 300
        while not self.srv.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.srv.started:
            raise RuntimeError("the bench server did not start")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)

    def close(self) -> None:
        self.http.close()
        self.srv.should_exit = True
        self.thread.join(60)


def measure(members: int) -> dict[str, float]:
    import orjson

    from retrainer.core.spec import parse_spec
    from retrainer.lifecycle.ingest import ingest_frame
    from retrainer.lifecycle.train import train
    from retrainer.plumbing.workspace import Workspace
    from retrainer.serving.model_holder import ModelRegistry

    data, fm = _fixtures()
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spec = parse_spec(data.fleet_spec(f"sqlite:///{d / 'ws.db'}", str(d / "art")), environ={})
        with Workspace(spec) as ws:
            ingest_frame(ws, data.FLEET, data.fleet_rows(["s0"], 120))
            train(ws, "sales.s0", deploy=True)
            others = [f"e{i}" for i in range(members - 1)]
            names = ["sales.s0", *fm.register_members(ws, data.FLEET, "sales.s0", others)]
            reg = ModelRegistry(ws, alert=lambda a: None)
            t = time.perf_counter()
            reg.refresh_all()
            out["start_lazy"] = time.perf_counter() - t
            sample = names[1:21]
            t = time.perf_counter()
            for m in sample:
                reg.ensure(m)
            out["load_one"] = (time.perf_counter() - t) / len(sample)
            out["start_eager"] = out["load_one"] * members
            out["poll_fleet"] = _median(lambda: reg.refresh_fleet(data.FLEET), 5)
            out["poll_each"] = _median(lambda: [ws.store.roles_revision(m) for m in names], 3)
            server = _Server(ws, d / "spool")
            try:
                http = server.http
                listing = http.get("/v1/models").json()
                assert len(listing) == members, len(listing)
                out["list"] = _median(lambda: http.get("/v1/models"), 7)
                out["list_floor"] = _median(lambda: http.get("/health"), 7) + _median(
                    lambda: orjson.dumps(listing), 7
                )
                per = {}
                for i in range(ENTITIES):
                    rows = data.fleet_rows([f"e{i}"], ROWS_PER_ENTITY, seed=i)
                    per[f"e{i}"] = [{"store": f"e{i}", "day_id": r.day_id, "x": r.x, "z": r.z}
                                    for r in rows.itertuples()]  # fmt: skip
                mixed = [per[e][j] for j in range(ROWS_PER_ENTITY) for e in per]
                http.post("/v1/models/sales/predict", json={"rows": mixed})  # loads them
                out["fleet_request"] = _median(
                    lambda: http.post("/v1/models/sales/predict", json={"rows": mixed}), 15
                )
                out["member_requests"] = _median(
                    lambda: [http.post(f"/v1/models/sales.{e}/predict", json={"rows": rows})
                             for e, rows in per.items()], 15,
                )  # fmt: skip
            finally:
                server.close()
    return out


def run(quick: bool) -> str:
    members = 200 if quick else 1000
    m = measure(members)
    ms = seconds
    rows = [
        ["hot-reload poll, nothing changed", ms(m["poll_fleet"]),
         f"{ms(m['poll_each'])} (each member's revision, one query each)"],
        ["first poll at start", ms(m["start_lazy"]),
         f"{ms(m['start_eager'])} (every champion loaded: {ms(m['load_one'])} each)"],
        [f"GET /v1/models ({members} listed)", ms(m["list"]),
         f"{ms(m['list_floor'])} (floor: /health + serializing the body)"],
        [f"{ENTITIES * ROWS_PER_ENTITY} rows of {ENTITIES} entities", ms(m["fleet_request"]),
         f"{ms(m['member_requests'])} ({ENTITIES} requests, one per member)"],
    ]  # fmt: skip
    return (
        f"## Serving a fleet ({members} members)\n\n"
        "One LightGBM member (30 trees) trained, registered again as every other member's "
        "champion; SQLite; a server on loopback (`bench/fleet_serving.py`). Medians.\n\n"
        + table(["what", "retrainer", "side by side"], rows)
        + "\n"
    )


def main(argv: list[str]) -> None:
    """Measure and write the ``fleet_serving`` section of docs/benchmarks.md (kept by
    ``python -m bench`` like any section)."""
    from .__main__ import DEFAULT_OUTPUT, wrap, write_page

    quick = "--quick" in argv
    started = time.perf_counter()
    body = run(quick)
    print(body)
    write_page(DEFAULT_OUTPUT, {"fleet_serving": wrap("fleet_serving", body, quick,
                                                      time.perf_counter() - started)})  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
