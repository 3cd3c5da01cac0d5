"""Engine, sessions and migrations.

SQLite is the embedded default and PostgreSQL the real deployment; nothing here
or elsewhere may use SQL that only one of them understands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_M = TypeVar("_M")

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings this program relies on for each backend."""
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling starts transactions late; we take
        # control so that `BEGIN IMMEDIATE` serialises writers (see _sqlite_begin).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Attachments and chat messages are removed by ON DELETE CASCADE, which
    # SQLite ignores unless foreign keys are switched on per connection.
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    # Deleted rows are overwritten with zeros, not left in free pages: an
    # erased person (or a shredded undo key) is not in the file's bytes.
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Several worker processes may share one SQLite file. IMMEDIATE takes the
    # write lock up front, so two workers never claim the same row.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def claim(session: Session, stmt: Select[_M]) -> _M | None:
    """The first row of `stmt`, locked for this transaction.

    On PostgreSQL, SKIP LOCKED lets several workers share the queue; on
    SQLite the transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    return session.scalars(stmt.with_for_update(skip_locked=True).limit(1)).first()
