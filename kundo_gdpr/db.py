"""Engine, sessions and migrations.

SQLite is the embedded default and PostgreSQL the real deployment; nothing here
or elsewhere may use SQL that only one of them understands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, Select, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config

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


def alembic_config(engine: Engine, config: Config | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    # A migration that rewrites subjects into keyed hashes needs the key (0012).
    cfg.attributes["config"] = config
    return cfg


def upgrade(engine: Engine, revision: str = "head", config: Config | None = None) -> None:
    """Bring the schema up to `revision` (idempotent). `config` gives migrations
    that hash subjects their key; without it such a migration refuses to run
    over rows it would have to hash."""
    command.upgrade(alembic_config(engine, config), revision)


def claim(session: Session, stmt: Select[_M]) -> _M | None:
    """The first row of `stmt`, locked for this transaction.

    On PostgreSQL, SKIP LOCKED lets several workers share the queue; on
    SQLite the transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    return session.scalars(stmt.with_for_update(skip_locked=True).limit(1)).first()


def purge(engine: Engine, tables: Sequence[str]) -> None:
    """After an erase: the erased bytes out of what the database keeps beside the rows.

    SQLite (secure_delete zeroes deleted content): each table's FTS5 index is
    merged into one segment, so no old segment keeps the erased text's
    trigrams, and the WAL is checkpointed and truncated, so no old page
    image stays in `-wal`. An idle connection does not stop either; one in
    the middle of a read transaction makes the checkpoint wait for it
    (busy_timeout) and then leaves the rest to the next purge.
    PostgreSQL: VACUUM of the tables, so no dead tuple keeps the text (the
    bytes may stay in free space inside the table files until reused or
    until `kundo-gdpr db compact`).
    """
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            for table in tables:
                fts = f"{table}_fts"
                if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                                {"n": fts}).first():
                    conn.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('optimize')")
        _checkpoint(engine)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM {table}")


def analyse_unanalysed(engine: Engine, tables: Sequence[str]) -> list[str]:
    """PostgreSQL: ANALYZE each of `tables` that has no planner statistics yet.

    A database fresh from `pg_restore` (or a bulk load) has none until
    autovacuum gets to it, and the planner then guesses a few hundred rows for
    a million-row table and picks plans that take minutes instead of seconds.
    PostgreSQL's own advice after a restore is to ANALYZE; a table already
    analysed is left alone, so this costs nothing on a running desk.
    SQLite: nothing (its planner needs no statistics to use the key indexes).
    Returns the tables analysed.
    """
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        fresh = [name for name in tables if conn.execute(text(
            "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL "
            "FROM pg_stat_user_tables WHERE relid = to_regclass(:t)"), {"t": name}).scalar()]
        for name in fresh:
            conn.exec_driver_sql(f"ANALYZE {name}")
    return fresh


def flush_stats(session: Session) -> None:
    """PostgreSQL: this transaction's row counts reach the statistics at its commit.

    Otherwise a backend may report its deletes' dead tuples after the purge's
    VACUUM has removed them, and `n_dead_tup` says they are still there.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_stat_force_next_flush()"))


def compact(engine: Engine, tables: Sequence[str]) -> None:
    """Rewrite the tables so their files hold no trace of deleted rows.

    PostgreSQL: VACUUM FULL (an exclusive lock on each table while it is
    rewritten). SQLite: VACUUM of the whole file, then a WAL checkpoint.
    """
    if engine.dialect.name == "sqlite":
        purge(engine, tables)
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("VACUUM")
        finally:
            raw.close()
        _checkpoint(engine)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM FULL {table}")


def _checkpoint(engine: Engine) -> None:
    # On the DBAPI connection: no BEGIN IMMEDIATE (a checkpoint runs outside
    # any transaction), and TRUNCATE leaves the -wal file empty.
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


@contextlib.contextmanager
def unit_locks(engine: Engine) -> Iterator[Callable[[int], bool]]:
    """`try_lock(row_id)` for units of work that span several transactions.

    A row lock ends with its transaction; a run that commits batch by batch
    needs a claim that lasts until it finishes, and ends by itself if its worker
    dies. On PostgreSQL that is a session-level advisory lock on one connection
    held for the `with` block (keyed by the schema and the row id, so other
    schemas in the same database do not collide); every lock taken is released
    on leaving. SQLite has one worker process, so every lock is granted.
    """
    if engine.dialect.name != "postgresql":
        yield lambda _row_id: True
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        taken: list[int] = []

        def try_lock(row_id: int) -> bool:
            got = conn.exec_driver_sql(_UNIT_LOCK.format(fn="pg_try_advisory_lock"),
                                       {"id": row_id}).scalar()
            if got:
                taken.append(row_id)
            return bool(got)

        try:
            yield try_lock
        finally:
            for row_id in taken:
                with contextlib.suppress(DBAPIError):
                    conn.exec_driver_sql(_UNIT_LOCK.format(fn="pg_advisory_unlock"),
                                         {"id": row_id})


_UNIT_LOCK = "SELECT {fn}((hashtext(current_schema())::bigint << 32) + %(id)s)"
