"""Keeping the desk's `*_key` columns in step with its addresses (see kundo_gdpr.identity)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import LargeBinary, select, text, update
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

    Served by a partial index on exactly such rows, so with nothing to do it
    is a handful of empty index lookups.
    """
    done = 0
    sqlite = session.get_bind().dialect.name == "sqlite"
    for model, address, column in owner_columns():
        # SQLite may hold bytes that are not UTF-8 in a text column: read
        # them as bytes so that a garbage row cannot stop the erase.
        value = address.cast(LargeBinary()) if sqlite else address
        pending: Any = (select(model.id, value).where(column.is_(None), address.is_not(None))
                        .order_by(model.id).limit(BATCH))
        if sqlite:
            # SQLite's planner prefers the key's own index (key IS NULL), which on a
            # desk where most rows have no such address reads every row.
            table, index = model.__tablename__, f"ix_{model.__tablename__}_{column.key}_pending"
            pending = text(f"SELECT id, CAST({address.key} AS BLOB) FROM {table} "
                           f"INDEXED BY {index} WHERE {column.key} IS NULL "
                           f"AND {address.key} IS NOT NULL ORDER BY id LIMIT {BATCH}")
        while rows := session.execute(pending).all():
            session.execute(update(model), [{"id": r[0], column.key: key(r[1])} for r in rows],
                            execution_options={"synchronize_session": False})
            done += len(rows)
    return done
