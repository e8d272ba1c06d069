"""SIGKILL every writing command of the CLI at random points, on SQLite and on PostgreSQL:
after each kill the registry is consistent, the champion loads and predicts, no acknowledged
row is lost and a killed run's rows are all there or none (see faulthelp.check_workspace).

Two kill points per command and backend here; ``python -m bench --only faults`` runs twenty
and writes docs/reliability.md. Replay a failure with FAULTS_SEED=<the seed it names>.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faulthelp import TYPICAL, Session, kill_plan

pytestmark = pytest.mark.slow
SEEDS = {"sqlite": 1501, "postgresql": 1502}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_at_random_points_of_every_writing_command(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "postgresql" and not request.getfixturevalue("pg_ok"):
        pytest.skip("PostgreSQL not reachable (set RETRAINER_REQUIRE_POSTGRES=1 to fail instead)")
    seed = int(os.environ.get("FAULTS_SEED", SEEDS[backend]))
    with Session(tmp_path, backend, seed) as session:
        outcomes = [session.run(command, delay) for command, delay in kill_plan(seed, TYPICAL, 2)]
    broken = [o.describe() for o in outcomes if o.failures]
    assert not broken, "\n".join(broken)
    assert any(o.killed for o in outcomes), [o.describe() for o in outcomes]
