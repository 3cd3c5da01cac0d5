"""Who may fetch: one worker at a time per database.

PostgreSQL: a session-level advisory lock held on a connection of its own. When
the holder dies, its connection closes and PostgreSQL frees the lock; another
worker's next try (every `service.poll_seconds` at most) takes it over. When
the database restarts, the holder's connection is gone and so is its lock:
`held()` notices and tries again.

SQLite: one worker process per database file; `single_process` takes an
exclusive lock on a file beside the database for the life of the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# pg_try_advisory_lock's first key for "this worker fetches" ("kund" in ASCII); the
# second is the schema's hash, so deployments (and tests) in other schemas of the
# same database do not share it.
FETCH_KEY = 0x6B756E64
# libpq keepalives on the lock's connection, so PostgreSQL also notices a holder
# whose machine vanished without closing its socket (not only a dead process).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}


class FetchLock(Protocol):
    def held(self) -> bool:
        """Whether this worker may fetch now (taking the lock if it is free)."""
        ...

    def release(self) -> None: ...


class AlwaysFetch:
    """SQLite: the one worker always fetches (`single_process` keeps others out)."""

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryFetchLock:
    """`retry_seconds`: a worker without the lock tries again at most this often
    (each try is a new connection), so take-over happens within that time."""

    def __init__(self, engine: Engine, retry_seconds: float = 1.0, key: int = FETCH_KEY) -> None:
        self._engine = create_engine(engine.url, poolclass=NullPool,
                                     isolation_level="AUTOCOMMIT", connect_args=KEEPALIVES)
        self._key = key
        self._retry_seconds = retry_seconds
        self._next_try = 0.0
        self._conn: Connection | None = None

    def held(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except DBAPIError:
                log.warning("lost the database connection holding the fetch lock")
                self._drop()
        if time.monotonic() < self._next_try:
            return False
        self._next_try = time.monotonic() + self._retry_seconds
        try:
            conn = self._engine.connect()
        except DBAPIError:
            return False
        try:
            got = conn.exec_driver_sql(
                "SELECT pg_try_advisory_lock(%(key)s, hashtext(current_schema()))",
                {"key": self._key}).scalar()
        except DBAPIError:
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        log.info("this worker fetches now (pid %d)", os.getpid())
        self._conn = conn
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                self._conn.exec_driver_sql(
                    "SELECT pg_advisory_unlock(%(key)s, hashtext(current_schema()))",
                    {"key": self._key})
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(DBAPIError):
                conn.close()


def fetch_lock_for(engine: Engine, retry_seconds: float = 1.0) -> FetchLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryFetchLock(engine, retry_seconds)
    return AlwaysFetch()


class AnotherWorker(Exception):
    """A second worker process was started on a single-process (SQLite) database."""


def single_process(engine: Engine) -> IO[bytes] | None:
    """On SQLite, lock `<database file>.worker.lock` for this process's life, or
    raise AnotherWorker. Keep the returned file open; None on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    path = Path(database + ".worker.lock")
    handle = path.open("a+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "?"
        handle.close()
        raise AnotherWorker(
            f"another worker (pid {holder}) is running on the SQLite database {database}; "
            "SQLite allows one worker process: use PostgreSQL for several") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle
