"""The fault-injection harness: run a real writing command of the CLI in a subprocess, SIGKILL
it after a random delay, then check what must hold whatever the moment of the kill.

One :class:`Session` is one workspace on one backend (a SQLite file, or a fresh PostgreSQL
database dropped afterwards) with the bundled weather rows. ``session.run(command, ...)``
prepares what the command needs (in this process, completed: acknowledged), runs the command,
kills it after ``delay`` seconds unless it ended first, and returns an :class:`Outcome` whose
``failures`` are what :func:`check_workspace` (and the command's own check) found broken.

Used by ``tests/faults/test_sigkill.py`` (a few kill points) and by ``bench/faults.py`` (20
per command and backend, results in docs/reliability.md). A failure names the command, the
backend, the seed and the delay, so the run can be replayed::

    python -m bench --only faults   # or: FAULTS_SEED=SEED, see bench/faults.py
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from typer.testing import CliRunner

from retrainer.apps.backup import backup, restore
from retrainer.cli.main import app
from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_file
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

MODEL = "weather"
LEASE = f"model:{MODEL}"
COMMANDS = (
    "ingest",
    "train --deploy",
    "fine-tune",
    "feedback",
    "maintain",
    "deploy",
    "rollback",
    "backup",
    "restore",
)
BACKENDS = ("sqlite", "postgresql")
# Seconds each command took to run to the end on a quiet 2-core machine (measured by
# `python -m bench --only faults`, which measures them again for its own delays).
TYPICAL = {
    "ingest": 1.1,
    "train --deploy": 2.5,
    "fine-tune": 2.8,
    "feedback": 1.1,
    "maintain": 2.8,
    "deploy": 2.6,
    "rollback": 2.7,
    "backup": 0.8,
    "restore": 1.0,
}
BLOCK_DAYS = 180  # each ingest, fine-tune and feedback takes a fresh half year of rows
PG_ADMIN = os.environ.get(
    "RETRAINER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
KILL_WAIT = 600  # seconds a SIGKILLed process may take to be reaped on a loaded machine


def model_body(**overrides: Any) -> dict[str, Any]:
    """The weather model of the fault sessions: small LightGBM, and a policy under which every
    ``maintain`` fully retrains, gates and deploys (so a kill lands in real work)."""
    body: dict[str, Any] = {
        "task": "classification",
        "target": "rain",
        "id_column": "day_id",
        "time_column": "date",
        "features": {"numeric": WEATHER_FEATURES},
        "family": "lightgbm",
        "params": {"n_estimators": 60, "num_threads": 1},
        "training": {"window_days": 1500},
        "fine_tune": {"min_rows": 50},
        "policy": {"max_days_since_full_retrain": 1e-9},
        "retention": {"keep": 4},
    }
    body.update(overrides)
    return body


def write_config(folder: Path, store: str, artifacts: str = "artifacts", **overrides: Any) -> Path:
    path = folder / "retrainer.yaml"
    data = {"store": store, "artifacts": artifacts, "models": {MODEL: model_body(**overrides)}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class Databases:
    """Fresh stores for one backend: SQLite files in ``folder`` or PostgreSQL databases on the
    local server, every one dropped by :meth:`drop_all`."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        self.made: list[str] = []

    def fresh(self) -> str:
        name = f"rt_faults_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.folder / (name + '.db')}"
        import psycopg

        with psycopg.connect(_libpq(PG_ADMIN), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"

    def drop_all(self) -> None:
        if not self.made:
            return
        import psycopg

        with psycopg.connect(_libpq(PG_ADMIN), autocommit=True) as conn:
            for name in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()


@dataclass
class Ledger:
    """What the workspace must still hold: every acknowledged row and actual (their commands
    exited 0), and whether the model had a champion."""

    had_champion: bool = False
    row_ids: list[str] = field(default_factory=list)
    actuals: int = 0


@dataclass(frozen=True)
class Outcome:
    """One run of a command: killed mid-run or finished, and what was found broken after."""

    command: str
    backend: str
    seed: int
    delay: float
    killed: bool
    exit_code: int | None
    seconds: float
    failures: tuple[str, ...]

    def describe(self) -> str:
        how = "killed" if self.killed else f"exit {self.exit_code}"
        return (
            f"{self.command} on {self.backend} (seed {self.seed}, kill after {self.delay:.2f} s, "
            f"{how}): " + ("; ".join(self.failures) or "ok")
        )


def check_workspace(config: Path, ledger: Ledger, sample: Path, folder: Path) -> list[str]:
    """What must hold in a workspace after any kill; one line per broken invariant.

    - the model that had a champion has exactly one, and every role points at an existing,
      non-deleted version whose artifact exists and verifies;
    - every version not deleted has its verified artifact (none registered half-written);
    - the deployment log ends on the champion;
    - every acknowledged row and actual is there;
    - ``retrainer predict`` scores ``sample`` with the champion.
    """
    problems: list[str] = []
    with Workspace(load_spec(config, environ={})) as ws:
        versions = {v.version: v for v in ws.store.list_versions(MODEL)}
        roles = ws.store.roles(MODEL)
        if ledger.had_champion and roles.champion is None:
            problems.append("the model lost its champion")
        serving = [("champion", roles.champion)]
        if roles.challenger is not None:
            serving.append(("challenger", roles.challenger.version))
        for role, name in serving:
            if name is None:
                continue
            v = versions.get(name)
            if v is None:
                problems.append(f"the {role} {name} is not a registered version")
            elif v.status == "deleted":
                problems.append(f"the {role} {name} is a deleted version")
        for v in versions.values():
            if v.status == "deleted":
                continue
            try:
                ws.artifact_bytes(v)
            except Exception as exc:  # the invariant: every kept version's bytes verify
                problems.append(f"version {v.version}'s artifact does not verify: {exc}")
        moves = [e for e in ws.store.events(MODEL) if e.action in ("deploy", "rollback", "promote")]
        if moves and moves[-1].to_version != roles.champion:
            problems.append(
                f"the deployment log ends on {moves[-1].to_version}, the champion is "
                f"{roles.champion}"
            )
        if ledger.row_ids:
            known = ws.store.known_entity_ids(MODEL, ledger.row_ids)
            if len(known) != len(set(ledger.row_ids)):
                problems.append(
                    f"{len(set(ledger.row_ids)) - len(known)} acknowledged training rows lost"
                )
        actuals = ws.store.count_actuals(MODEL)
        if actuals < ledger.actuals:
            problems.append(f"{ledger.actuals - actuals} acknowledged actuals lost")
    if roles.champion is not None:
        problems += cli_predict(config, sample, folder / "checked.csv", roles.champion)
    return problems


def cli_predict(config: Path, sample: Path, out: Path, champion: str) -> list[str]:
    """``retrainer predict`` (the real CLI, in this process) scores ``sample`` with ``champion``."""
    res = CliRunner().invoke(
        app, ["-c", str(config), "predict", MODEL, str(sample), "-o", str(out), "--json"]
    )
    if res.exit_code != 0:  # a traceback in the CLI is exit 1 here too
        return [f"retrainer predict failed (exit {res.exit_code}): {res.output[-500:]}"]
    scored = pd.read_csv(out)
    if len(scored) != len(pd.read_csv(sample)):
        return [f"retrainer predict scored {len(scored)} rows of {len(pd.read_csv(sample))}"]
    if f'"version": "{champion}"' not in res.output:
        return [f"retrainer predict did not use the champion {champion}: {res.output[-300:]}"]
    return []


def run_killed(
    config: Path, argv: list[str], delay: float, folder: Path
) -> tuple[bool, int | None, float, str]:
    """Run ``retrainer -c config ARGV``; SIGKILL it after ``delay`` seconds unless it ended.

    Returns (killed, exit code or None, seconds, the end of its stderr)."""
    err = folder / "stderr.txt"
    started = time.monotonic()
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "retrainer.cli.main", "-c", str(config), *argv],
            cwd=folder,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            code: int | None = proc.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=KILL_WAIT)
            killed, code = True, None
    return killed, code, time.monotonic() - started, err.read_text(errors="replace")[-1500:]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def kill_plan(seed: int, typical: dict[str, float], points: int) -> list[tuple[str, float]]:
    """``points`` rounds of every command, each with a delay drawn uniformly within that
    command's typical duration; the same seed gives the same plan.

    >>> kill_plan(1, {"ingest": 1.0, "backup": 2.0}, 1)
    [('ingest', 0.134), ('backup', 1.695)]
    """
    rng = random.Random(seed)
    return [(c, round(rng.uniform(0, t), 3)) for _ in range(points) for c, t in typical.items()]


class Session:
    """One workspace on one backend, through which the writing commands are run and killed.

    Built in this process: four years of rows, a first champion trained and deployed, a
    second version deployed over it, and predictions logged (so feedback has something to
    join). Use as a context manager: the PostgreSQL databases it made are dropped on exit.
    """

    def __init__(self, folder: Path, backend: str, seed: int) -> None:
        self.folder = folder
        self.backend = backend
        self.seed = seed
        self.rng = random.Random(seed)
        self.dbs = Databases(backend, folder)
        self.ledger = Ledger()
        self.data = weather()
        self.next_block = pd.Timestamp("1953-01-01")
        self.round = 0
        self.last_backup: Path | None = None

    def __enter__(self) -> Session:
        try:
            self.config = write_config(self.folder, self.dbs.fresh())
            self.sample = self.folder / "sample.csv"
            self.data.head(20).drop(columns=["rain"]).to_csv(self.sample, index=False)
            with self.workspace() as ws:
                self._ingest(ws, self.data[self.data["date"] < self.next_block])
                train(ws, MODEL, deploy=True)
                self._ingest(ws, self._block())
                train(ws, MODEL, deploy=True)
                self.ledger.had_champion = True
            self.last_backup = self._backup_now()
        except BaseException:
            self.dbs.drop_all()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.dbs.drop_all()

    @contextmanager
    def workspace(self, config: Path | None = None) -> Iterator[Workspace]:
        with Workspace(load_spec(config or self.config, environ={})) as ws:
            yield ws

    def _block(self) -> pd.DataFrame:
        start, self.next_block = self.next_block, self.next_block + timedelta(days=BLOCK_DAYS)
        rows = self.data[(self.data["date"] >= start) & (self.data["date"] < self.next_block)]
        if rows.empty:
            raise RuntimeError("the weather data has no rows left for another block")
        return rows

    def _ingest(self, ws: Workspace, rows: pd.DataFrame) -> None:
        ingest_frame(ws, MODEL, rows)
        self.ledger.row_ids += [str(i) for i in rows["day_id"]]

    def _backup_now(self) -> Path:
        path = self.folder / f"prepared-{self.round}.tar.gz"
        with self.workspace() as ws:
            backup(ws, path)
        return path

    def run(self, command: str, delay: float) -> Outcome:
        """Prepare ``command``, run it, kill it after ``delay`` s unless it ended, check."""
        self.round += 1
        step = getattr(self, "step_" + command.split()[0].replace("-", "_"))
        try:
            argv, after = step()
            config = after.config if isinstance(after, Target) else self.config
            killed, code, seconds, stderr = run_killed(config, argv, delay, self.folder)
            failures = []
            if not killed and code != 0:
                failures.append(f"exit {code}: {stderr.strip()}")
            failures += after(killed, code == 0)
            self._free_stale_lease()
            failures += check_workspace(self.config, self.ledger, self.sample, self.folder)
        except Exception:
            killed, code, seconds = False, None, 0.0
            failures = [f"harness error: {traceback.format_exc(limit=3)}"]
        return Outcome(
            command, self.backend, self.seed, delay, killed, code, seconds, tuple(failures)
        )

    # Each step prepares its command (completed, in this process) and returns the command's
    # argv and the check to run after it: check(killed, exited_ok) -> failures.

    def step_ingest(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        rows = self._block()
        path = self.folder / f"rows-{self.round}.csv"
        rows.to_csv(path, index=False)
        ids = [str(i) for i in rows["day_id"]]

        def after(killed: bool, ok: bool) -> list[str]:
            with self.workspace() as ws:
                present = len(ws.store.known_entity_ids(MODEL, ids))
            if ok:
                self.ledger.row_ids += ids
            elif present == len(ids):
                self.ledger.row_ids += ids  # the killed run committed: now acknowledged
            if present not in (0, len(ids)):
                return [f"a killed ingest left {present} of its {len(ids)} rows"]
            if ok and present != len(ids):
                return [f"an ingest that exited 0 stored {present} of its {len(ids)} rows"]
            return []

        return ["ingest", MODEL, str(path)], after

    def step_train(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        return ["train", MODEL, "--deploy"], _nothing

    def step_fine_tune(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        with self.workspace() as ws:
            self._ingest(ws, self._block())
        return ["fine-tune", MODEL, "--deploy"], _nothing

    def step_feedback(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        rows = self._block()
        scored = self.folder / f"score-{self.round}.csv"
        rows.drop(columns=["rain"]).to_csv(scored, index=False)
        with self.workspace() as ws:
            predict_file(ws, MODEL, scored, self.folder / "scored.csv")
            before = ws.store.count_actuals(MODEL)
        actuals = self.folder / f"actuals-{self.round}.csv"
        rows[["day_id", "date", "rain"]].to_csv(actuals, index=False)
        n = len(rows)

        def after(killed: bool, ok: bool) -> list[str]:
            with self.workspace() as ws:
                added = ws.store.count_actuals(MODEL) - before
            if added == n:
                self.ledger.actuals = before + n
            if added not in (0, n):
                return [f"a killed feedback left {added} of its {n} actuals"]
            if ok and added != n:
                return [f"a feedback that exited 0 stored {added} of its {n} actuals"]
            return []

        return ["feedback", MODEL, str(actuals)], after

    def step_maintain(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        before = set(self._versions())

        def after(killed: bool, ok: bool) -> list[str]:
            with self.workspace() as ws:
                decisions = ws.store.decisions(MODEL, limit=10_000)
                made = [v for v in ws.store.list_versions(MODEL) if v.version not in before]
            said = " ".join(d.outcome or "" for d in decisions)
            words = set(said.replace(":", " ").replace(";", " ").split())
            ids = {d.id for d in decisions}
            lost = [
                v.version
                for v in made
                if v.version not in words and v.details.get("decision_id") not in ids
            ]
            problems = []
            if lost:
                problems.append(f"maintain registered {', '.join(lost)} with no decision about it")
            pending = [d.id for d in decisions if (d.outcome or "").startswith("pending:")]
            if ok and pending:
                problems.append(f"a maintain that exited 0 left decisions {pending} pending")
            return problems

        return ["maintain", MODEL], after

    def _versions(self) -> list[str]:  # every version, deleted ones too
        with self.workspace() as ws:
            return [v.version for v in ws.store.list_versions(MODEL)]

    def _other_version(self) -> str:
        with self.workspace() as ws:
            champion = ws.store.roles(MODEL).champion
            ready = [
                v.version
                for v in ws.store.list_versions(MODEL, include_deleted=False)
                if v.version != champion and v.status != "deleted"
            ]
        if not ready:
            raise RuntimeError("no version other than the champion to deploy")
        return self.rng.choice(ready)

    def step_deploy(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        return ["deploy", MODEL, self._other_version(), "--force"], _nothing

    def step_rollback(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        return ["rollback", MODEL, "--to", self._other_version()], _nothing

    def step_backup(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        path = self.folder / f"backup-{self.round}.tar.gz"
        with self.workspace() as ws:
            versions = len(ws.store.list_versions(MODEL))

        def after(killed: bool, ok: bool) -> list[str]:
            if not path.exists():
                return [] if killed else ["a backup that exited 0 left no file"]
            target = Target.make(self, Databases("sqlite", self.folder))
            try:
                with self.workspace(target.config) as ws:
                    restored = restore(ws, path)
                    got = len(ws.store.list_versions(MODEL))
            except Exception as exc:
                return [f"the backup file {path.name} does not restore: {exc}"]
            finally:
                target.clean()
            self.last_backup = path
            if got != versions:
                return [f"the backup holds {got} versions of {versions} ({restored})"]
            return []

        return ["backup", str(path)], after

    def step_restore(self) -> tuple[list[str], Callable[[bool, bool], list[str]]]:
        assert self.last_backup is not None
        source = self.last_backup
        target = Target.make(self, self.dbs)
        target.source = source
        target.expected_from_backup()
        return ["restore", str(source)], target

    def _free_stale_lease(self) -> None:
        """A killed maintain keeps its lease until it expires (by design); let it expire."""
        with self.workspace() as ws:
            holder = ws.store.lease_holder(LEASE)
            if holder is not None:
                later = holder[1] + timedelta(seconds=1)
                if ws.store.acquire_lease(LEASE, "faults", 60, now=later):
                    ws.store.release_lease(LEASE, "faults")


def _nothing(killed: bool, ok: bool) -> list[str]:
    return []


@dataclass
class Target:
    """An empty store and artifact folder to restore into, with its own config."""

    config: Path
    folder: Path
    session: Session
    source: Path | None = None
    versions: int = 0
    actuals: int = 0

    @classmethod
    def make(cls, session: Session, dbs: Databases) -> Target:
        folder = session.folder / f"target-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        store = dbs.fresh() if dbs.backend == "postgresql" else f"sqlite:///{folder / 's.db'}"
        return cls(write_config(folder, store), folder, session)

    def expected_from_backup(self) -> None:
        """What a complete restore of ``source`` holds, read by restoring it into a scratch
        SQLite store."""
        assert self.source is not None
        scratch = Target.make(self.session, Databases("sqlite", self.session.folder))
        try:
            with Workspace(load_spec(scratch.config, environ={})) as ws:
                restore(ws, self.source)
                self.versions = len(ws.store.list_versions(MODEL))
                self.actuals = ws.store.count_actuals(MODEL)
        finally:
            scratch.clean()

    def __call__(self, killed: bool, ok: bool) -> list[str]:
        """A killed restore leaves the store empty (and restorable) or fully restored."""
        assert self.source is not None
        problems: list[str] = []
        try:
            with Workspace(load_spec(self.config, environ={})) as ws:
                got = (len(ws.store.list_versions(MODEL)), ws.store.count_actuals(MODEL))
                if got == (0, 0) and not ok:
                    restore(ws, self.source)  # an empty store takes the restore again
                    got = (len(ws.store.list_versions(MODEL)), ws.store.count_actuals(MODEL))
            if got != (self.versions, self.actuals):
                problems.append(
                    f"the restored store holds {got[0]} versions and {got[1]} actuals, the "
                    f"backup {self.versions} and {self.actuals}"
                )
            ledger = Ledger(had_champion=True, actuals=self.actuals)
            sample = self.session.sample
            problems += [
                "restored: " + p for p in check_workspace(self.config, ledger, sample, self.folder)
            ]
        except Exception as exc:
            problems.append(f"after a killed restore the store cannot be restored: {exc!r}")
        finally:
            self.clean()
        return problems

    def clean(self) -> None:
        with suppress(OSError):
            shutil.rmtree(self.folder)
