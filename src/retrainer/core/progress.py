"""Progress of long operations, reported at stage and chunk granularity (never per row).

A lifecycle function takes an optional :class:`Progress` and reports on it: ``stage(name,
total, unit)`` when a stage begins, ``advance(n)`` when a chunk, a fit or a table is done,
``done()`` at the end. The default reports nothing, so the library holds no terminal code;
the CLI passes a bar for a terminal or a line per stage for logs
(:mod:`retrainer.cli.progress_view`), and a caller of the Python API can pass its own.

Functions deep in a run (a fit, a window choice) report on the run's reporter without a
parameter of their own: the entry point makes it :func:`current` for the run
(:func:`reporting`); in another thread or a fresh call it is the no-op.

>>> lines = []
>>> log = StageLog(lines.append)
>>> with reporting(log):
...     current().stage("read", unit="rows")
...     current().advance(1_000_000); current().advance(200_000)
...     current().stage("window choice", total=4, unit="candidates")
...     for _ in range(4): current().advance()
...     current().done()
>>> [s.text().rsplit(" ", 2)[0] for s in lines]
['read 1,200,000 rows (2 chunks)', 'window choice 4 candidates']
>>> current() is NO_PROGRESS
True
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    """What a long operation reports on: stages, and the chunks done within a stage."""

    def stage(self, name: str, total: int | None = None, unit: str = "") -> None:
        """A new stage begins (the previous one is done); ``total``: chunks or items it will
        count, when known; ``unit``: what it counts (``rows``, ``folds``)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more of the stage's unit are done (one call per chunk, never per row)."""

    def done(self) -> None:
        """The current stage is done (a no-op when none is open)."""


class NoProgress:
    """Reports nothing: the default of every lifecycle function."""

    def stage(self, name: str, total: int | None = None, unit: str = "") -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


NO_PROGRESS = NoProgress()

_current: ContextVar[Progress] = ContextVar("retrainer_progress", default=NO_PROGRESS)


def current() -> Progress:
    """The reporter of the run in progress (:data:`NO_PROGRESS` outside one)."""
    return _current.get()


@contextmanager
def reporting(progress: Progress | None) -> Iterator[Progress]:
    """Make ``progress`` the :func:`current` reporter for the block and yield it, and end its
    last stage when the block ends well; with None the block keeps the caller's (a train
    inside a maintain reports on the maintain's)."""
    if progress is None:
        yield current()
        return
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
    progress.done()


@dataclass(frozen=True)
class Stage:
    """A finished stage: its count, how many advances (chunks) made it, its wall time."""

    name: str
    count: int
    calls: int
    total: int | None
    unit: str
    seconds: float

    def text(self) -> str:
        """One line for a log.

        >>> Stage("read", 1_200_000, 3, None, "rows", 2.14).text()
        'read 1,200,000 rows (3 chunks) 2.1 s'
        >>> Stage("walk-forward folds", 3, 3, 5, "folds", 0.5).text()
        'walk-forward folds 3/5 folds 0.5 s'
        >>> Stage("save artifact", 0, 0, None, "", 0.04).text()
        'save artifact 0.0 s'
        """
        parts = [self.name]
        if self.calls or self.total:
            shown = f"{self.count:,}"
            if self.total is not None and self.count != self.total:
                shown += f"/{self.total:,}"
            parts.append(f"{shown} {self.unit}".rstrip())
            if self.calls > 1 and self.calls != self.count:
                parts.append(f"({self.calls:,} chunks)")
        parts.append(f"{self.seconds:.1f} s")
        return " ".join(parts)


class StageLog:
    """A :class:`Progress` that hands each finished :class:`Stage` to ``on_stage``."""

    def __init__(
        self,
        on_stage: Callable[[Stage], None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.on_stage, self.clock = on_stage, clock
        self._open: tuple[str, int | None, str, float] | None = None
        self._count = self._calls = 0

    def stage(self, name: str, total: int | None = None, unit: str = "") -> None:
        self.done()
        self._open = (name, total, unit, self.clock())
        self._count = self._calls = 0

    def advance(self, n: int = 1) -> None:
        if self._open is not None:
            self._count += n
            self._calls += 1

    def done(self) -> None:
        if self._open is None:
            return
        name, total, unit, started = self._open
        self._open = None
        self.on_stage(Stage(name, self._count, self._calls, total, unit, self.clock() - started))

    def abandon(self) -> None:
        """Drop the open stage without reporting it (the run failed in it)."""
        self._open = None


P = ParamSpec("P")
R = TypeVar("R")


def reports(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with its ``progress=`` keyword (when given) as the :func:`current`
    reporter, so the function and everything it calls report on :func:`current`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        given = kwargs.get("progress")
        with reporting(given if isinstance(given, Progress) else None):
            return fn(*args, **kwargs)

    return wrapper
