"""``maintain`` for many models at once: a fleet's members in parallel on Dask workers.

:func:`maintain_many` runs :func:`retrainer.lifecycle.maintain.maintain` for each name and
returns one :class:`Maintained` per name, in the order given; one model failing does not stop
the others (its error is its outcome). Where each model runs:

- ``workers=N``: on a LocalCluster of N worker processes started for the call;
- else a member of a fleet with ``training: {engine: dask}``: on that fleet's
  ``training.scheduler`` (a LocalCluster when it names none);
- else in this process, one model after another (as ``maintain --all`` always did).

A model that is not a member and trains on Dask itself (``engine: dask``) always runs in this
process: its fits use the cluster. A task maintains ``batch`` models. Each worker process opens
one :class:`Workspace` per spec and keeps it (:func:`_workspace`): a SQLite store is shared by
file (each write waits up to ``RETRAINER_BUSY_TIMEOUT`` for another process's lock), a
PostgreSQL store by URL (a pool per worker process). On a worker a member trains with its
fleet's ``training.threads`` or 1 thread, and with the local engine: the worker is its share of
the cluster. A scheduler that cannot be reached raises DistributedError naming it before any
model is maintained; a worker lost mid-run fails the models of its task (their leases expire,
a decision left pending is resumed by the next maintain) and the others go on.

>>> from retrainer.core.spec import parse_spec
>>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://mm", "models": {"m": {
...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
...     "features": {"numeric": ["x"]}}}}, environ={})
>>> with Workspace(spec) as ws:
...     [(r.model, r.result.decision.outcome[:30]) for r in maintain_many(ws, ["m"])]
[('m', "not done: Model 'm' has no tra")]
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.clock import use_clock
from ..core.errors import DistributedError, RetrainerError
from ..core.extras import missing_library
from ..core.fleet import split_member
from ..core.progress import NO_PROGRESS, Progress
from ..core.spec import Spec
from ..core.spec_sections import Training
from ..plumbing.workspace import Workspace
from .maintain import MaintainResult, maintain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Maintained:
    """One model's turn: its result, or the error that stopped it; the wall ``seconds`` it
    took where it ran (on a worker: without the scheduler's overhead) and the ``cpu_seconds``
    of the process meanwhile (on a worker of one thread: the turn's own)."""

    model: str
    result: MaintainResult | None
    error: RetrainerError | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class Options:
    """How each model is maintained (the arguments of :func:`maintain`)."""

    dry_run: bool = False
    triggered_by: str = "manual"
    wait: float = 0.0
    as_of: datetime | None = None


@dataclass(frozen=True)
class Placement:
    """Where a group of models runs: ``workers`` processes of a new LocalCluster, the
    ``training`` section's cluster, or this process (both None)."""

    names: tuple[str, ...]
    workers: int | None = None
    training: Training | None = None

    @property
    def where(self) -> str:
        if self.workers is not None:
            return f"a LocalCluster of {self.workers} worker process(es)"
        if self.training is not None:
            return self.training.scheduler or "a LocalCluster (training.scheduler unset)"
        return "this process"


def plan(spec: Spec, names: Sequence[str], workers: int | None = None) -> list[Placement]:
    """Where each of ``names`` runs (see the module's rules), in groups.

    >>> from retrainer.core.spec import parse_spec
    >>> spec = parse_spec({"store": "sqlite://", "models": {"f": {"task": "regression",
    ...     "target": "y", "id_column": "id", "time_column": "t", "fleet": {"by": "k"},
    ...     "features": {"numeric": ["x"]}}}}, environ={})
    >>> [(p.where, p.names) for p in plan(spec, ["f.a", "f.b"], workers=2)]
    [('a LocalCluster of 2 worker process(es)', ('f.a', 'f.b'))]
    >>> [(p.where, p.names) for p in plan(spec, ["f.a"])]
    [('this process', ('f.a',))]
    """
    here: list[str] = []
    groups: dict[str | None, list[str]] = {}
    trainings: dict[str | None, Training] = {}
    for name in names:
        training = spec.model(name).training
        member = split_member(name) is not None
        on_dask = training.engine == "dask"
        if (on_dask and not member) or (workers is None and not on_dask):
            here.append(name)  # trains on Dask itself, or nothing asks for workers
            continue
        key = None if workers is not None else training.scheduler
        groups.setdefault(key, []).append(name)
        trainings.setdefault(key, training)
    out = [
        Placement(tuple(group), workers, None if workers is not None else trainings[key])
        for key, group in groups.items()
    ]
    return out + ([Placement(tuple(here))] if here else [])


def maintain_many(
    ws: Workspace,
    names: Sequence[str],
    *,
    workers: int | None = None,
    batch: int = 1,
    options: Options = Options(),
    progress: Progress = NO_PROGRESS,
    on_done: Callable[[Maintained], object] | None = None,
) -> list[Maintained]:
    """Maintain each of ``names`` once (see the module), each outcome passed to ``on_done``
    as it comes; the outcomes in the order of ``names``."""
    if (workers is not None and workers < 1) or batch < 1:
        raise ValueError(
            f"maintain_many needs workers (or None) and batch of at least 1; got "
            f"workers={workers!r}, batch={batch!r}"
        )
    progress.stage("maintain", total=len(names), unit="models")
    done: dict[str, Maintained] = {}

    def finish(m: Maintained) -> None:
        done[m.model] = m
        progress.advance()
        if on_done is not None:
            on_done(m)

    for place in plan(ws.spec, names, workers):
        if place.workers is None and place.training is None:
            for name in place.names:
                finish(_one(ws, name, options))
        else:
            _on_cluster(ws.spec, place, batch, options, finish)
    progress.done()
    return [done[name] for name in names]


def _on_cluster(
    spec: Spec,
    place: Placement,
    batch: int,
    options: Options,
    finish: Callable[[Maintained], None],
) -> None:
    try:
        from distributed import as_completed
    except ImportError as exc:
        raise missing_library("maintain on Dask workers", exc) from None
    shipped = worker_spec(spec, place.names)
    with _client(place) as client:
        chunks = [place.names[i : i + batch] for i in range(0, len(place.names), batch)]
        futures = {
            client.submit(run_batch, shipped, list(chunk), options, pure=False): chunk
            for chunk in chunks
        }
        for future in as_completed(futures, loop=client.loop):
            chunk = futures[future]
            try:
                outcomes: list[Maintained] = future.result()
            except Exception as exc:  # the worker was lost, or the task could not run
                outcomes = [_lost(name, place, exc) for name in chunk]
            for m in outcomes:
                finish(m)


def _lost(name: str, place: Placement, exc: Exception) -> Maintained:
    error = DistributedError(
        f"Maintain of {name!r} on {place.where} did not finish: {type(exc).__name__}: {exc}. "
        "Nothing half-done is kept (a version is registered whole or not at all); its lease "
        "expires and the next maintain resumes a pending decision: run it again",
        model=name,
    )
    return Maintained(name, None, error)


@contextlib.contextmanager
def _client(place: Placement) -> Iterator[Any]:
    if place.workers is None:
        assert place.training is not None
        from .dask_engine import connect

        with connect(place.training, "Nothing was maintained") as client:
            yield client
        return
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=place.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        with Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cluster.close()


def worker_spec(spec: Spec, names: Sequence[str]) -> Spec:
    """``spec`` as a worker runs it: the fleets of ``names`` train with the local engine and
    ``training.threads`` or 1 thread.

    >>> from retrainer.core.spec import parse_spec
    >>> spec = parse_spec({"store": "sqlite://", "models": {"f": {"task": "regression",
    ...     "target": "y", "id_column": "id", "time_column": "t", "fleet": {"by": "k"},
    ...     "features": {"numeric": ["x"]}, "training": {"engine": "dask"}}}}, environ={})
    >>> t = worker_spec(spec, ["f.a"]).models["f"].training
    >>> t.engine, t.threads
    ('local', 1)
    """
    fleets = {parts[0] for name in names if (parts := split_member(name))}
    models = dict(spec.models)
    for fleet in fleets & set(models):
        training = models[fleet].training
        local = training.model_copy(update={"engine": "local", "threads": training.threads or 1})
        models[fleet] = models[fleet].model_copy(update={"training": local})
    return spec.model_copy(update={"models": models})


_WORKSPACES: dict[str, Workspace] = {}
_OPENING = threading.Lock()


def _workspace(spec: Spec) -> Workspace:
    """This process's workspace for ``spec``: opened on the first task, kept for the next."""
    key = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
    with _OPENING:
        if key not in _WORKSPACES:
            _WORKSPACES[key] = Workspace(spec)
        return _WORKSPACES[key]


def run_batch(spec: Spec, names: list[str], options: Options) -> list[Maintained]:
    """The task a worker runs: maintain each of ``names`` in this process's workspace."""
    ws = _workspace(spec)
    done = []
    for name in names:
        done.append(_one(ws, name, options))
        ws.forget(name)  # the worker keeps no member's models between turns
    return done


def _one(ws: Workspace, name: str, options: Options) -> Maintained:
    started, cpu = time.perf_counter(), time.process_time()
    at = options.as_of
    r, error = None, None
    try:
        with use_clock(lambda: at) if at is not None else contextlib.nullcontext():
            r = maintain(ws, name, dry_run=options.dry_run, triggered_by=options.triggered_by,
                         wait=options.wait)  # fmt: skip
    except RetrainerError as exc:
        error = exc
    except Exception as exc:  # a bug in one model's turn must not stop the others
        log.exception("maintain of %r raised", name)
        error = RetrainerError(f"Maintain of {name!r} raised {type(exc).__name__}: {exc}")
    took = time.perf_counter() - started
    return Maintained(name, r, error, took, time.process_time() - cpu)
