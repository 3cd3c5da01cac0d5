"""What the vault's modules share: the desk tables it keeps, a transaction's
before images (`Capture`), its errors, and the flags it leaves on sessions
and connections."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table

from kundo_gdpr.models import (
    Attachment,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
)

# Session.info keys: the window a session's erase belongs to, the images
# captured in its open transaction, and the connection that transaction uses.
WATCH = "kundo_gdpr.vault.watch"
CAPTURED = "kundo_gdpr.vault.captured"
CONNECTION = "kundo_gdpr.vault.conn"
# Connection.info keys: inside a watched transaction; a captured statement is running.
WATCHED = "kundo_gdpr.vault.watched"
ARMED = "kundo_gdpr.vault.armed"
# PostgreSQL: this connection has the vault's temp tables; this transaction is
# prepared for them; the desk tables whose images wait in them; the statement
# about to run keeps its own images.
TEMP = "kundo_gdpr.vault.temp"
PREPARED = "kundo_gdpr.vault.prepared"
PENDING = "kundo_gdpr.vault.pending"
IN_STATEMENT = "kundo_gdpr.vault.in_statement"
# What a watched transaction leaves on its connection, cleared when it ends.
TRANSACTION_FLAGS = (WATCHED, ARMED, PENDING, IN_STATEMENT, PREPARED)

DESK_TABLES: dict[str, Table] = {
    t.name: t for t in (ForumPost.__table__, MailConversation.__table__, MailMessage.__table__,
                        ChatSession.__table__, ChatMessage.__table__, Attachment.__table__)
    if isinstance(t, Table)
}

Key = tuple[str, int]  # (table, id)
# Each desk table's columns in the order its before images keep them.
COLUMNS = {name: [c.name for c in t.columns] for name, t in DESK_TABLES.items()}
ID_AT = {name: columns.index("id") for name, columns in COLUMNS.items()}


class VaultError(Exception):
    """A change inside a watched erase that the vault could not keep."""


@dataclasses.dataclass(frozen=True)
class Image:
    table: str
    op: str  # "delete" | "update"
    values: dict[str, Any]

    @property
    def key(self) -> Key:
        return self.table, int(self.values["id"])


@dataclasses.dataclass
class Capture:
    """The before images of one watched transaction, as the driver gave them.

    Rows are kept as tuples in the table's column order (`COLUMNS`), the first
    image of each row only: that is its state before this transaction, and
    what undo writes back. A row deleted after an earlier change here is
    restored by inserting that first image.
    """

    rows: dict[str, dict[int, tuple[Any, ...]]] = dataclasses.field(default_factory=dict)
    deleted: dict[str, set[int]] = dataclasses.field(default_factory=dict)

    def add(self, table: str, op: str, rows: Iterable[Sequence[Any]]) -> list[int]:
        """Keep the rows' images; their ids."""
        mine = self.rows.setdefault(table, {})
        at = ID_AT[table]
        ids = []
        for row in rows:
            ids.append(row[at])
            mine.setdefault(row[at], tuple(row))
        if op == "delete" and ids:
            self.deleted.setdefault(table, set()).update(ids)
        return ids

    def __bool__(self) -> bool:
        return any(self.rows.values())
