"""After an erase the erased text is in no byte the database keeps: not in the
SQLite file, its -wal or -shm (while another connection stays open), not in a
dead PostgreSQL tuple, and after `db compact` not in any table file."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.actions.erase import erase_subject
from kundo_gdpr.desk.protocol import DEFAULT
from kundo_gdpr.desk.seed import seed_demo
from kundo_gdpr.desk.sql_erase import ERASED_TABLES
from kundo_gdpr.models import InboundMail, Request
from tests import untidy_desk
from tests.postgres import PrivatePostgres, private_postgres
from tests.test_erase import covered

__all__ = ["private_postgres"]  # the fixture, used by name
SUBJECT = "Anna Svensson <ANNA@x.se>"
# Texts only the erased items held (and the others' texts held before the
# marker replaced her address in them).
ERASED = ("Var är mitt paket?", "Min cykel är trasig.", "Annas cykel",
          "Hej, här är mitt kvitto", "Kvitto till anna@x.se", "198.18.7.5", "198.18.7.6",
          "198.18.7.8", "anna%40x.se", "anna&#64;x.se", "anna=40x.se", "anna&#x40;x.se",
          "Och Anna här.")


def _erase(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        untidy_desk.build(session)
        mail = InboundMail(source="test", sha256="1" * 64, raw=b"", size=0, state="parsed")
        request = Request(reference="GDPR-T", inbound_mail=mail, kinds=["erase"],
                          state="approved", due_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
        session.add(request)
        session.flush()
        request_id, channels = request.id, covered(session)
    erase_subject(factory, "sql", DEFAULT, request_id, SUBJECT, channels)


def _found(data: bytes) -> list[str]:
    return [t for t in ERASED if t.encode() in data]


def test_sqlite_file_wal_and_shm_hold_none_of_it_while_another_connection_is_open(
    world: None, engine: Engine, factory: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL: the test below, on a cluster of its own
    path = Path(str(make_url(str(engine.url)).database))
    other = sqlite3.connect(path, isolation_level=None)  # as `serve` keeps one
    try:
        assert other.execute("SELECT count(*) FROM forum_posts").fetchone()[0] > 0
        _erase(factory)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        for file in files:
            if file.exists():
                assert _found(file.read_bytes()) == [], file.name
        assert other.execute("SELECT count(*) FROM forum_posts").fetchone()[0] > 0
    finally:
        other.close()


def _dead_tuples(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT relname, n_dead_tup FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = ANY(:t)"),
            {"t": list(ERASED_TABLES)}).all()
    return {r[0]: r[1] for r in rows}


def _table_files(engine: Engine) -> list[Path]:
    with engine.connect() as conn:
        base = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        conn.execute(text("CHECKPOINT"))
        paths = []
        for table in ERASED_TABLES:
            for rel in conn.execute(text(
                    "SELECT pg_relation_filepath(c.oid) FROM pg_class c "
                    "WHERE c.oid = CAST(:t AS regclass) OR c.oid = ("
                    "SELECT reltoastrelid FROM pg_class WHERE oid = CAST(:t AS regclass))"),
                    {"t": table}).scalars():
                if rel:
                    paths += sorted((base / rel).parent.glob((base / rel).name + "*"))
    return paths


def test_postgresql_keeps_no_dead_tuple_and_after_compact_no_table_file_holds_it(
    private_postgres: PrivatePostgres,
) -> None:
    """On a cluster of our own: a transaction open elsewhere in the database (a
    parallel test run) would hold VACUUM back, as it would in production."""
    engine = db.make_engine(private_postgres.url)
    try:
        db.upgrade(engine)
        factory = db.session_factory(engine)
        with factory.begin() as session:
            seed_demo(session)
        _erase(factory)
        dead = _dead_tuples(engine)
        assert dead == dict.fromkeys(ERASED_TABLES, 0)
        db.compact(engine, ERASED_TABLES)
        files = _table_files(engine)
        assert files and all(f.exists() for f in files)
        for file in files:
            assert _found(file.read_bytes()) == [], file
    finally:
        engine.dispose()
