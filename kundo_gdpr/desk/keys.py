"""Keeping the desk's `*_key` columns in step with its addresses (see kundo_gdpr.identity)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from kundo_gdpr.identity import key
from kundo_gdpr.models import ChatMessage, ChatSession, ForumPost, MailConversation, MailMessage

BATCH = 5000


def owner_columns() -> Iterator[tuple[Any, Any, Any]]:
    """(model, address column, key column) for every owner column of the desk."""
    yield ForumPost, ForumPost.author_email, ForumPost.author_key
    yield MailConversation, MailConversation.customer_email, MailConversation.customer_key
    yield MailMessage, MailMessage.from_addr, MailMessage.from_key
    yield MailMessage, MailMessage.to_addr, MailMessage.to_key
    yield ChatSession, ChatSession.visitor_email, ChatSession.visitor_key
    yield ChatMessage, ChatMessage.sender_email, ChatMessage.sender_key


def catch_up(session: Session) -> int:
    """Set the key of every row that has an address but no key; how many were set.

    Served by a partial index on exactly such rows. One round trip asks
    which owner columns have any such row (usually none); only those are
    read. Done once per transaction: count, erase and export each ask for
    the subject's key, and a second pass in the same transaction finds what
    the first left, nothing.
    """
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(_CAUGHT_UP) is transaction:
        return 0
    done = 0
    sqlite = session.get_bind().dialect.name == "sqlite"
    columns = list(owner_columns())
    pending = session.execute(_any_pending(columns, sqlite)).one()
    for (model, address, column), waiting in zip(columns, pending, strict=True):
        if waiting:
            done += _catch_up_column(session, model, address, column, sqlite)
    session.info[_CAUGHT_UP] = session.get_transaction()
    return done


# session.info key: the transaction whose keys are known to be in step.
_CAUGHT_UP = "kundo_gdpr.keys_caught_up"


def _pending_rows(model: Any, address: Any, column: Any, sqlite: bool) -> str:
    """FROM … WHERE of a column's rows without a key (raw SQL: see `_catch_up_column`)."""
    table = model.__tablename__
    # SQLite's planner prefers the key's own index (key IS NULL), which on a
    # desk where most rows have no such address reads every row.
    indexed = f" INDEXED BY ix_{table}_{column.key}_pending" if sqlite else ""
    return (f"FROM {table}{indexed} WHERE {column.key} IS NULL "
            f"AND {address.key} IS NOT NULL")


def _any_pending(columns: list[tuple[Any, Any, Any]], sqlite: bool) -> Any:
    """One row: for each owner column, whether any row waits for its key."""
    tests = ", ".join(f"EXISTS (SELECT 1 {_pending_rows(*c, sqlite)})" for c in columns)
    return text(f"SELECT {tests}")


def _catch_up_column(session: Session, model: Any, address: Any, column: Any,
                     sqlite: bool) -> int:
    done = 0
    # SQLite may hold bytes that are not UTF-8 in a text column: read
    # them as bytes so that a garbage row cannot stop the erase.
    value = f"CAST({address.key} AS BLOB)" if sqlite else address.key
    pending = text(f"SELECT id, {value} {_pending_rows(model, address, column, sqlite)} "
                   f"ORDER BY id LIMIT {BATCH}")
    while rows := session.execute(pending).all():
        session.execute(update(model), [{"id": r[0], column.key: key(r[1])} for r in rows],
                        execution_options={"synchronize_session": False})
        done += len(rows)
    return done
