"""Engines: SQLite (WAL, durable, immediate writes, one writer queue across processes) or
PostgreSQL, and which of their errors mean storage is unavailable."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway.config.settings import default_sqlite_dir
from gateway.core.errors import CardDataRefused, ConfigurationError, StorageUnavailable

SQLITE_BUSY_TIMEOUT_SECONDS = 2.0


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create an engine for SQLite (WAL, durable, immediate writes) or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_private(Path(database))
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        event.listen(engine, "handle_error", _refusal_unwrapped)
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=5,
            connect_args={
                "connect_timeout": 5,
                "options": "-c statement_timeout=10000 -c lock_timeout=5000",
            },
        )
        event.listen(engine, "handle_error", _refusal_unwrapped)
        return engine
    raise ConfigurationError(
        f"PAYSIEVE_DATABASE_URL: {parsed.drivername}:// is not supported; use sqlite:///path.db"
        " or postgresql+psycopg://user@host:5432/dbname"
    )


def _create_private(path: Path) -> None:
    """Create an empty SQLite file readable by its owner only, in a directory that exists.

    Only the default var/ directory of the paysieve home (``sqlite:///var/paysieve.db``, the
    trial's and ``make run``'s) is made here; any other missing directory is a configuration
    error, not a new empty database somewhere the operator did not mean.
    """
    if path.exists():
        return
    if not path.parent.is_dir():
        if path.parent != default_sqlite_dir():
            raise ConfigurationError(
                f"the SQLite database's directory {path.parent} does not exist; create it"
                " or fix PAYSIEVE_DATABASE_URL"
            )
        path.parent.mkdir(exist_ok=True)
    # SQLite opens an empty file as a new database, and gives its -wal and -shm files the
    # same mode: the records, sealed or not, are nobody else's to read.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _refusal_unwrapped(context: ExceptionContext) -> None:
    # A column type refused a value (gateway.storage.tables): raise that refusal, a 400 the caller
    # maps like any other, rather than SQLAlchemy's wrapper around it.
    if isinstance(context.original_exception, CardDataRefused):
        raise context.original_exception


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take over transaction control from the driver so BEGIN IMMEDIATE is possible.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged event survives power loss, not only a process crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten, so erased data does not linger in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A writer takes the write lock up front: no deadlock upgrading a read lock.
    if connection.get_execution_options().get("write"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def storage_errors() -> tuple[type[Exception], ...]:
    return (OperationalError, PoolTimeout, DBAPIError)


# Failures that are the database's state, not one delivery's: retrying alone cannot help.
OUTAGES = (OperationalError, PoolTimeout, StorageUnavailable)


class WriterGate:
    """Queue SQLite writers: threads on a lock, processes on a lock file beside the database.

    SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries, so writers
    racing for its lock wait far longer than the lock is held. Here a thread waits on
    a lock that wakes it at once, and only one thread per process polls the file lock,
    briefly. The database's own lock and busy timeout still apply behind the gate, for
    writers that are not paysieve gateways.
    """

    def __init__(self, path: str | None) -> None:
        self._lock = threading.Lock()
        self._path = path
        self._fd: int | None = None

    @classmethod
    def for_engine(cls, engine: Engine) -> WriterGate:
        """Return a gate for the engine's database file (in-process only for :memory:)."""
        database = engine.url.database
        path = f"{database}.writers" if database and database != ":memory:" else None
        return cls(path)

    def __enter__(self) -> None:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_SECONDS):
            raise StorageUnavailable("storage is busy; retry later")
        try:
            self._lock_file(deadline)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def _lock_file(self, deadline: float) -> None:
        if self._path is None:
            return
        if self._fd is None:
            # Opened once per process; the kernel drops the lock if the process dies.
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StorageUnavailable("storage is busy; retry later") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.0005)
