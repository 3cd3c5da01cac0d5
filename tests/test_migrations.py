"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from kundo_gdpr import db
from kundo_gdpr.models import Base

# Migration 0003's trigram FTS5 tables on SQLite and the shadow tables FTS5
# keeps for each: a search index the mention scan reads, not part of the
# desk's schema in the models (PostgreSQL's counterpart is a GIN index).
FTS = frozenset(
    f"{table}_fts{shadow}"
    for table in ("forum_posts", "mail_conversations", "mail_messages", "chat_messages")
    for shadow in ("", "_data", "_idx", "_docsize", "_config")
)


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
