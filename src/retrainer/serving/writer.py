"""The prediction-log writer process: the database half of prediction logging, out of the
server's process.

``WriterProcess`` is the sink ``LogQueue`` writes its batches to. Its ``log_predictions``
pickles the records (C code, a few microseconds per request) and hands them over a pipe to a
child process that binds and inserts them, and waits for the answer with the GIL released. The
SQL work, which is most of what logging costs, no longer competes with the event loop for the
interpreter; everything else stays in ``LogQueue`` (the batching, the spool, the replay).

The child is started (``spawn``) with the first batch and writes once it has connected; until
then, and whenever it has died, the batch is written in-process through ``fallback`` (the
server's own store), and a dead child is started again with a later batch (after 1 s, then
twice as long while children keep dying, up to a minute). What the child's
store raises comes back as the same kind of error: a data error (``RefusedRecords``, a
``ValueError``: the batch holds a record the store cannot take) or a store error
(``StoreUnavailable``: the store cannot write now).

Which is which is decided in one place, ``data_error``: only an error that is about the records
themselves (the database's data and integrity errors, a value Python cannot encode) is one;
permission denied, a read-only or full database, a lost connection, a lock and anything
unknown are store errors, retried until the store takes the records again. ``deliver`` writes a
batch so that one bad record never sinks the others: on a data error it splits the batch in
halves until the bad records are alone, sets aside (``park``) only a record whose own write
fails with a data error, and writes everything else.

>>> import tempfile, datetime
>>> from retrainer.store import SqlStore
>>> from retrainer.store.predlog import request_record
>>> url = f"sqlite:///{tempfile.mkdtemp()}/r.db"
>>> store = SqlStore(url)
>>> w = WriterProcess(url, store)
>>> rec = request_record("m", "r1", "1.0.0", "champion", datetime.datetime(2024, 1, 1),
...                      '{"row": {"x": 1}}', [None], [0.5])
>>> w.log_predictions([rec])  # the child is starting: written in-process
1
>>> w.wait_ready(60), w.log_predictions([{**rec, "input_key": "k2"}]), w.in_child
(True, 1, 1)
>>> w.close(); store.count_predictions("m")
2
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from sqlalchemy.exc import StatementError

from ..core.errors import RetrainerError, StoreUnavailable
from ..store.predlog import PredictionRecord

log = logging.getLogger("retrainer.serving.log")
# DB-API (PEP 249) error classes about the data sent, whatever the driver: a value the column
# cannot hold (a NUL in PostgreSQL text, a string too long) or a broken constraint.
_DATA_CLASSES = frozenset(("DataError", "IntegrityError"))
# Python errors raised while a record is read or encoded (a lone surrogate in a string is a
# UnicodeEncodeError, a ValueError; a missing field a KeyError): the record is malformed.
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError)


class PredictionSink(Protocol):
    def log_predictions(self, records: Sequence[PredictionRecord]) -> int: ...


class RefusedRecords(ValueError):
    """The writer process's store refused a batch for its data (see ``data_error``)."""


def data_error(exc: BaseException) -> bool:
    """Whether ``exc``, raised by writing a batch, may be caused by the batch's own records.

    Everything else is a store error (permission denied, read-only database, disk full, a lost
    connection, a lock, an error of our own hierarchy, anything unknown): the records are kept
    and written again later, never set aside.

    >>> from sqlalchemy.exc import DataError, OperationalError, ProgrammingError
    >>> data_error(UnicodeEncodeError("utf-8", "\\ud800", 0, 1, "surrogates not allowed"))
    True
    >>> data_error(DataError("COPY", {}, Exception("text cannot contain NUL")))
    True
    >>> data_error(ProgrammingError("INSERT", {}, Exception("permission denied")))
    False
    >>> data_error(OperationalError("INSERT", {}, Exception("readonly database")))
    False
    """
    if isinstance(exc, RetrainerError):  # StoreUnavailable, StoreBusy, ...
        return False
    if isinstance(exc, StatementError) and exc.orig is not None:
        if {c.__name__ for c in type(exc).__mro__} & _DATA_CLASSES:
            return True
        return data_error(exc.orig)  # a DB-API error, or what binding a value raised
    if {c.__name__ for c in type(exc).__mro__} & _DATA_CLASSES:
        return True
    # Other DB-API errors (OperationalError, ProgrammingError, ...) are no ValueError.
    return isinstance(exc, _MALFORMED) and not isinstance(exc, OSError)


class Unwritten(Exception):
    """A store error stopped ``deliver``: ``records`` were not written (the rest were)."""

    def __init__(self, records: list[PredictionRecord], cause: BaseException) -> None:
        super().__init__(f"{len(records)} records not written: {type(cause).__name__}: {cause}")
        self.records, self.cause = records, cause


Write = Callable[[list[PredictionRecord]], Any]
Park = Callable[[PredictionRecord, str], None]


def reason(exc: BaseException) -> str:
    """What an error says, on one line (kept with a parked record)."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def deliver(write: Write, records: Sequence[PredictionRecord], park: Park) -> int:
    """Write ``records``; returns what ``write`` counted. On a data error (``data_error``) the
    batch is split in halves, each written on its own, until a bad record is alone: only a
    record whose own write fails with a data error goes to ``park(record, reason)``. A store
    error raises ``Unwritten`` with every record not yet written (all of them, or what was
    left when it struck part-way).

    >>> def write(batch):
    ...     if any(r["id"] == "\\x00" for r in batch):
    ...         raise ValueError("NUL in an id")
    ...     return len(batch)
    >>> parked = []
    >>> deliver(write, [{"id": str(i)} for i in range(7)] + [{"id": "\\x00"}],
    ...         lambda r, why: parked.append((r["id"], why)))
    7
    >>> parked
    [('\\x00', 'ValueError: NUL in an id')]
    """
    batch = list(records)
    try:
        return int(write(batch) or 0)
    except Exception as exc:
        if not data_error(exc):
            raise Unwritten(batch, exc) from exc
        if len(batch) == 1:
            park(batch[0], reason(exc))
            return 0
    mid = len(batch) // 2
    halves = (batch[:mid], batch[mid:])
    written = 0
    for k, half in enumerate(halves):
        try:
            written += deliver(write, half, park)
        except Unwritten as stop:
            rest = stop.records + [r for h in halves[k + 1 :] for r in h]
            raise Unwritten(rest, stop.cause) from stop.cause
    return written


def in_memory(url: str) -> bool:
    """A store another process cannot open (an in-memory SQLite database)."""
    u = url.strip().lower()
    return u in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in u


def _serve(url: str, conn: Connection) -> None:  # the child process
    from ..store.predlog import PredictionLogStore

    try:
        store = PredictionLogStore(url, auto_migrate=False)
    except Exception as exc:  # reported, then the parent writes in-process
        with contextlib.suppress(OSError):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    try:
        _loop(store, conn)
    except (EOFError, OSError):  # the server went away (or stopped before we were up)
        pass
    finally:
        store.close()


def _loop(store: Any, conn: Connection) -> None:
    conn.send(("ready", None))
    while True:
        payload = conn.recv_bytes()
        if not payload:  # close
            break
        try:
            reply: tuple[str, Any] = ("ok", store.log_predictions(pickle.loads(payload)))
        except Exception as exc:  # a store error keeps the batch (spooled) and retries it
            reply = ("refused" if data_error(exc) else "down", reason(exc))
        conn.send(reply)


class WriterProcess:
    """A ``PredictionSink`` that writes in a child process (see the module docstring)."""

    def __init__(
        self, url: str, fallback: PredictionSink, *, restart_after: tuple[float, float] = (1, 60)
    ) -> None:
        """``restart_after``: the first and the longest wait before a child that died is
        started again (doubling in between)."""
        if in_memory(url):
            raise ValueError(f"An in-memory store ({url!r}) cannot be written by another process.")
        self.url = url
        self.fallback = fallback
        self.in_child = self.in_process = self.restarts = 0
        self._proc: Any = None
        self._conn: Connection | None = None
        self._ready = False
        self._closed = False
        self._backoff = 0.0
        self._restart_at = 0.0  # a child that died is not started again before this
        self._first_wait, self._longest_wait = restart_after

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> None:
        """Start the child (it connects in the background; ``wait_ready`` waits for it)."""
        if self._closed or self.alive:
            return
        if self._proc is not None:
            if self._conn is not None and not self._ready:
                self._drop()  # it died before it was ready, unread: a failed start all the same
            if time.monotonic() < self._restart_at:
                return  # meanwhile the batches are written in-process
            self.restarts += 1
            log.warning("prediction log: the writer process died; starting another")
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(self.url, child), name="retrainer-log-writer", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn, self._ready = parent, False

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the child to connect (starting it if need be,
        at once); True once it has."""
        if not self._ready and not self.alive:
            self._restart_at = 0.0
            self.start()
        deadline = time.monotonic() + timeout
        while not self._check_ready(max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline or not self.alive:
                return False
        return True

    def _check_ready(self, wait: float = 0.0) -> bool:
        if self._ready:
            return True
        conn = self._conn
        if conn is None:
            return False
        try:
            if not conn.poll(wait):
                return False
            kind, detail = conn.recv()
        except (EOFError, OSError):
            self._drop()
            return False
        if kind == "ready":
            self._ready, self._backoff = True, 0.0
            return True
        log.warning("prediction log: the writer process could not open the store: %s", detail)
        self._drop()
        return False

    def log_predictions(self, records: Sequence[PredictionRecord]) -> int:
        """Write ``records`` in the child, or in-process while it is not there."""
        if not self._closed and not self.alive:
            self.start()
        if self._closed or not self._check_ready():
            self.in_process += 1
            return self.fallback.log_predictions(records)
        conn = self._conn
        assert conn is not None
        payload = pickle.dumps(list(records), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            conn.send_bytes(payload)
            kind, value = conn.recv()
        except (EOFError, OSError):  # the child died with the batch: write it here
            self._drop()
            self.in_process += 1
            return self.fallback.log_predictions(records)
        self.in_child += 1
        if kind == "ok":
            return int(value)
        if kind == "refused":
            raise RefusedRecords(f"The prediction log refused a batch: {value}")
        raise StoreUnavailable(f"The writer process's store cannot write the batch now: {value}")

    def _drop(self) -> None:
        """Forget a child that died or could not start; the next one waits ``restart_after``
        (1 s, doubling up to a minute while they keep failing: no process-spawning loop)."""
        if self._conn is not None:
            self._conn.close()
        self._conn, self._ready = None, False
        self._backoff = min(self._longest_wait, max(self._first_wait, 2 * self._backoff))
        self._restart_at = time.monotonic() + self._backoff
        if self._proc is not None and not self._proc.is_alive():
            self._proc.join(0)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the child after the batch it is writing (call once the queue is drained)."""
        self._closed = True
        conn, proc = self._conn, self._proc
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send_bytes(b"")
            conn.close()
        self._conn, self._ready = None, False
        if proc is not None:
            proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout)
