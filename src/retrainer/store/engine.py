"""Engines by URL (SQLite in WAL mode by default, PostgreSQL), migrations, safe URL display,
and the one place a held lock becomes :class:`StoreBusy`.

A writer waits for another writer's lock at most :func:`busy_timeout` seconds
(``RETRAINER_BUSY_TIMEOUT``, default 30): SQLite's busy timeout, PostgreSQL's
``lock_timeout``. Past it, the database's error ("database is locked", lock not available)
is raised as StoreBusy (exit 1, HTTP 503 with Retry-After): nothing was written, and the same
command succeeds once the other writer is done.

>>> safe_url("postgresql+psycopg://app:s3cret@db:5432/prod")
'postgresql+psycopg://app:***@db:5432/prod'
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from ..core.errors import ConfigError, StoreBusy, StoreUnavailable
from ..core.extras import missing_library

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0006"  # the newest migration (a test checks it against the scripts)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


BUSY_TIMEOUT_ENV = "RETRAINER_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another writer's lock


def busy_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a writer waits for a lock another writer holds (``RETRAINER_BUSY_TIMEOUT``).

    >>> busy_timeout({}), busy_timeout({"RETRAINER_BUSY_TIMEOUT": "0.5"})
    (30.0, 0.5)
    """
    raw = (os.environ if environ is None else environ).get(BUSY_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 3600:
        raise ConfigError(
            f"{BUSY_TIMEOUT_ENV}={raw[:40]!r} is not a number of seconds from 0 to 3600 "
            "(how long a writer waits for another writer's lock; default "
            f"{DEFAULT_BUSY_TIMEOUT:g})."
        )
    return value


POOL_SIZE_ENV, POOL_OVERFLOW_ENV = "RETRAINER_POOL_SIZE", "RETRAINER_POOL_MAX_OVERFLOW"
DEFAULT_POOL_SIZE, DEFAULT_POOL_OVERFLOW = 5, 5


def _pool_number(environ: Mapping[str, str], key: str, default: int, low: int) -> int:
    raw = environ.get(key, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= 1000:
        raise ConfigError(
            f"{key}={raw[:40]!r} is not a whole number from {low} to 1000 (PostgreSQL "
            f"connections this process keeps open; default {default})."
        )
    return int(raw)


def pool_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The PostgreSQL connection pool of one process: a SQLAlchemy ``QueuePool`` keeping
    ``RETRAINER_POOL_SIZE`` connections (default 5) and opening up to
    ``RETRAINER_POOL_MAX_OVERFLOW`` more under load (default 5), each checked with a ping
    before use (a connection the server or a proxy dropped is replaced, not handed out).
    A server's peak is its request threads plus its log writer and reloader; several
    replicas on one database need ``replicas × (size + overflow)`` below the server's
    ``max_connections``.

    >>> pool_options({})
    {'pool_size': 5, 'max_overflow': 5, 'pool_pre_ping': True}
    >>> pool_options({"RETRAINER_POOL_SIZE": "2", "RETRAINER_POOL_MAX_OVERFLOW": "0"})["pool_size"]
    2
    """
    env = os.environ if environ is None else environ
    return {
        "pool_size": _pool_number(env, POOL_SIZE_ENV, DEFAULT_POOL_SIZE, 1),
        "max_overflow": _pool_number(env, POOL_OVERFLOW_ENV, DEFAULT_POOL_OVERFLOW, 0),
        "pool_pre_ping": True,
    }


def make_engine(url: str) -> Engine:
    """An engine for a store URL. SQLite: a file database gets SQLAlchemy's default
    ``QueuePool`` (WAL mode lets its readers run beside the one writer), an in-memory one a
    single shared connection (``StaticPool``: each new connection would be a new, empty
    database). PostgreSQL: a sized ``QueuePool`` (:func:`pool_options`)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"Store URL {safe_url(url)!r} is not a database URL. Expected e.g. "
            "'sqlite:///retrainer.db' or 'postgresql+psycopg://user@host/db'."
        ) from None
    backend = parsed.get_backend_name()
    wait = busy_timeout()
    if backend == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        if db in ("", ":memory:"):  # one shared connection, or every connect is a new db
            engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            engine = create_engine(url, connect_args={"timeout": wait})
        _sqlite_setup(engine, wait)
        _busy_errors(engine, wait)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            engine = create_engine(
                parsed,
                **pool_options(),
                connect_args={"options": f"-c lock_timeout={max(1, round(wait * 1000))}"},
            )
        except ImportError as exc:  # the driver is the `postgres` extra
            raise missing_library(f"Store URL {safe_url(url)!r}", exc) from None
        _busy_errors(engine, wait)
        return engine
    raise ConfigError(
        f"Store URL {safe_url(url)!r} uses backend {backend!r}. Supported: sqlite, postgresql."
    )


_SQLITE_CACHE_KIB = 65_536  # page cache per connection: bulk key probes stay in memory


_BUSY_SQLITE = ("database is locked", "database is busy", "database table is locked")
_BUSY_PG = ("55P03", "40001", "40P01")  # lock not available, serialization failure, deadlock


def is_busy(exc: BaseException) -> bool:
    """Whether a DB-API error says another writer holds a lock this one waited for.

    >>> import sqlite3
    >>> is_busy(sqlite3.OperationalError("database is locked")), is_busy(ValueError("x"))
    (True, False)
    """
    if getattr(exc, "sqlstate", None) in _BUSY_PG:  # psycopg
        return True
    if getattr(exc, "pgcode", None) in _BUSY_PG:  # psycopg2
        return True
    if type(exc).__module__.startswith("sqlite3") or type(exc).__name__ == "OperationalError":
        return str(exc).strip().lower().startswith(_BUSY_SQLITE)
    return False


def _busy_errors(engine: Engine, wait: float) -> None:
    """Raise a held lock as StoreBusy, wherever in the store it is met."""

    @event.listens_for(engine, "handle_error")
    def _busy(context: Any) -> None:
        orig = context.original_exception
        if orig is None or not is_busy(orig):
            return
        raise StoreBusy(
            f"Store busy: another writer held the store's write lock longer than this one "
            f"waits ({wait:g} s; e.g. a long ingest, a restore or a migration), so nothing was "
            f"written. Retry when it is done, or wait longer with {BUSY_TIMEOUT_ENV}=SECONDS. "
            f"({str(orig).strip().splitlines()[0][:120]})",
            retry_after=max(1, round(wait)),
        ) from orig


def _sqlite_setup(engine: Engine, wait: float) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={round(wait * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the lock up front, so two writers never deadlock on an upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: BEGIN IMMEDIATE on SQLite, a plain one elsewhere."""
    with connect(engine) as conn:
        conn.info["write"] = True
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info["write"] = False


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise StoreUnavailable(
            f"Cannot connect to the store at {safe_url(str(engine.url))}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}. "
            "Check that the database server runs and the URL in the spec is right.",
            url=safe_url(str(engine.url)),
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def _alembic_config(conn: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest migration script's revision (imports Alembic; :data:`HEAD` does not)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema's revision (None for an empty database), read without Alembic."""
    with connect(engine) as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rev = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        return None if rev is None else str(rev)


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the schema to the newest migration; returns (before, after). Alembic is
    imported only when there is something to upgrade. An empty database gets the newest
    schema in one step (the tables as ``schema`` declares them, stamped at the head), as
    Alembic advises for new databases; a test checks that the migrations give the same."""
    before = current_revision(engine)
    head = HEAD
    if before != head:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":  # one migrator at a time across processes
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7305412)")
            if not inspect(conn).has_table("alembic_version"):
                _create(conn)
            else:
                from alembic import command

                command.upgrade(_alembic_config(conn), "head")
    return before, head


def _create(conn: Connection) -> None:
    from sqlalchemy import Column, MetaData, String, Table

    from .schema import metadata

    metadata.create_all(conn)
    version = Table(
        "alembic_version", MetaData(), Column("version_num", String(32), primary_key=True)
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD))
