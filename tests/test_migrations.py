"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from kundo_gdpr import db
from kundo_gdpr.models import Base
from tests.conftest import PG_ENV
from tests.templates import Templates, build, schema_url

# Migration 0003's trigram FTS5 tables on SQLite and the shadow tables FTS5
# keeps for each: a search index the mention scan reads, not part of the
# desk's schema in the models (PostgreSQL's counterpart is a GIN index).
FTS = frozenset(
    f"{table}_fts{shadow}"
    for table in ("forum_posts", "mail_conversations", "mail_messages", "chat_messages")
    for shadow in ("", "_data", "_idx", "_docsize", "_config")
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Migrated here, not copied from the session's template (tests/templates.py):
    these tests are about the migrations themselves."""
    eng = db.make_engine(db_url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


def _not_fts(name: str | None, type_: str, _parents: object) -> bool:
    return not (type_ == "table" and name in FTS)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLite cannot reflect expression indexes; PostgreSQL compares them.
        warnings.simplefilter("ignore")
        context = MigrationContext.configure(conn, opts={"include_name": _not_fts})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_sqlite_keeps_a_trigram_index_of_the_texts_in_step(engine: Engine) -> None:
    """Inserted, updated and cascaded-away texts are found, and no longer found, by MATCH."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO organizations (id, name, slug, language) "
                             "VALUES (901, 'o', 'fts-test', 'sv')")
        conn.exec_driver_sql("INSERT INTO channels (id, organization_id, kind, name) "
                             "VALUES (901, 901, 'chat', 'c')")
        conn.exec_driver_sql("INSERT INTO chat_sessions (id, channel_id, started_at) "
                             "VALUES (901, 901, '2026-01-01')")
        conn.exec_driver_sql("INSERT INTO chat_messages (id, session_id, sender, body, sent_at) "
                             "VALUES (901, 901, 'visitor', 'hej Åsa@Example.se', '2026-01-01')")

    def found(phrase: str) -> list[int]:
        with engine.connect() as conn:
            return list(conn.scalars(text(
                "SELECT rowid FROM chat_messages_fts WHERE chat_messages_fts MATCH :q"),
                {"q": f'"{phrase}"'}))

    assert found("åsa@example.SE") == [901]
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE chat_messages SET body = 'tack' WHERE id = 901")
    assert found("åsa@example.se") == [] and found("tack") == [901]
    with engine.begin() as conn:  # the session's delete cascades to its messages
        conn.exec_driver_sql("DELETE FROM chat_sessions WHERE id = 901")
    assert found("tack") == []
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO chat_messages_fts (chat_messages_fts) VALUES ('integrity-check')")


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    before = sorted(inspect(engine).get_table_names())
    db.upgrade(engine)
    assert sorted(inspect(engine).get_table_names()) == before
    assert "requests" in before and "forum_posts" in before


def test_the_tests_copies_are_the_migrated_and_seeded_database(
    engine: Engine, templates: Templates, tmp_path: Path,
) -> None:
    """What `engine` and `world` hand other tests (a copy of the session's template)
    has the same schema objects, rows and sequence positions as a database
    migrated and seeded in place."""
    for kind in ("migrated", "world"):
        built = _fresh(engine, tmp_path / f"built-{kind}")
        copied = _fresh(engine, tmp_path / f"copied-{kind}")
        try:
            build(built, kind)
            if copied.dialect.name == "sqlite":
                copied.dispose()
                assert templates.sqlite_copy(kind, Path(str(copied.url.database)))
            else:
                assert templates.pg_copy(kind, _schema(copied))
            assert _snapshot(copied) == _snapshot(built)
        finally:
            _drop(built)
            _drop(copied)


def _fresh(like: Engine, path: Path) -> Engine:
    """An empty database on `like`'s backend."""
    if like.dialect.name == "sqlite":
        return db.make_engine(f"sqlite:///{path}.sqlite3")
    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with like.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    return db.make_engine(schema_url(base, schema))


def _schema(engine: Engine) -> str:
    with engine.connect() as conn:
        name = conn.scalar(text("SELECT current_schema()"))
    assert isinstance(name, str)
    return name


def _drop(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        schema = _schema(engine)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def _snapshot(engine: Engine) -> dict[str, Any]:
    """Every schema object's definition and every table's rows, with the
    database's own name taken out."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            master = conn.execute(text(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")).all()
            # Alembic's batch mode (SQLite's ALTER) writes a rebuilt table's
            # constraints in no fixed order, even between two real migrations:
            # each definition's lines are compared as a set.
            objects = [(row.type, row.name, row.tbl_name,
                        sorted(line.strip().rstrip(",") for line in (row.sql or "").splitlines()))
                       for row in master]
            tables = [row.name for row in master if row.type == "table"]
            rows = {t: conn.execute(text(f'SELECT * FROM "{t}" ORDER BY 1')).all()
                    for t in tables}
            return {"objects": objects, "rows": rows}
        schema = _schema(engine)
        catalog = {
            "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
                       "FROM information_schema.columns WHERE table_schema = :s",
            "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s",
            "constraints": "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
                           "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = :s",
            "triggers": "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = :s AND NOT t.tgisinternal",
            "functions": "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                         "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s",
            "sequences": "SELECT sequencename, last_value FROM pg_sequences "
                         "WHERE schemaname = :s",
        }
        found: dict[str, Any] = {}
        for name, query in catalog.items():
            found[name] = sorted(
                tuple(str(value).replace(schema, "S") for value in row)
                for row in conn.execute(text(query), {"s": schema}))
        tables = [row[0] for row in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema})]
        # PostgreSQL prints a CHECK's IN list differently once it has been read back
        # from its own printout (the casts move inside the ARRAY); the same test.
        found["constraints"] = sorted(
            (name, re.sub(r"::(character varying|text\[\]|text)|[()]", "", definition))
            for name, definition in found["constraints"])
        found["rows"] = {t: conn.scalar(text(
            f"SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
            f"FROM {t} r")) for t in sorted(tables)}
        found["counts"] = {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in tables}
        return found
