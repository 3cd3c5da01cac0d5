"""What the vault's modules share: the desk tables it keeps, a transaction's
before images (`Capture`), its errors, and the flags it leaves on sessions
and connections."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Date, DateTime, Integer, LargeBinary, String, Table
from sqlalchemy.types import TypeDecorator

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
# PostgreSQL: this connection has the vault's temp table; this transaction is
# prepared for it; the statements of this transaction that kept images in it,
# and how many of them are drained; the statement about to run keeps its own.
TEMP = "kundo_gdpr.vault.temp"
PREPARED = "kundo_gdpr.vault.prepared"
STEPS = "kundo_gdpr.vault.steps"
DRAINED = "kundo_gdpr.vault.drained"
IN_STATEMENT = "kundo_gdpr.vault.in_statement"
# What a watched transaction leaves on its connection, cleared when it ends.
TRANSACTION_FLAGS = (WATCHED, ARMED, STEPS, DRAINED, IN_STATEMENT, PREPARED)

DESK_TABLES: dict[str, Table] = {
    t.name: t for t in (ForumPost.__table__, MailConversation.__table__, MailMessage.__table__,
                        ChatSession.__table__, ChatMessage.__table__, Attachment.__table__)
    if isinstance(t, Table)
}


class VaultError(Exception):
    """A change inside a watched erase that the vault could not keep."""


Key = tuple[str, int]  # (table, id)
# Each desk table's columns in the order its before images keep them.
COLUMNS = {name: [c.name for c in t.columns] for name, t in DESK_TABLES.items()}
ID_AT = {name: columns.index("id") for name, columns in COLUMNS.items()}


def _codec(column: Column[Any]) -> str:
    """How a column's value is written in PostgreSQL's JSON image, and read back:
    "" as JSON's own (a number, string, boolean), "t" an ISO 8601 timestamp,
    "d" an ISO date, "b" bytes in base64. A type with no exact JSON form is not
    kept that way (a float's NaN, a numeric's trailing zeros)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, DateTime):
        return "t"
    if isinstance(kind, Date):
        return "d"
    if isinstance(kind, LargeBinary):
        return "b"
    if isinstance(kind, Integer | String | Boolean):
        return ""
    raise VaultError(f"the undo vault cannot keep {column} ({kind}) as JSON")


CODECS = {name: [_codec(c) for c in t.columns] for name, t in DESK_TABLES.items()}


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
    """The before images of one watched transaction: the first image of each row
    only, which is its state before this transaction and what undo writes back
    (a row deleted after an earlier change here is restored by inserting it).

    `rows` are tuples of the driver's values in the table's column order
    (`COLUMNS`), captured in Python. `json_rows` are PostgreSQL's images, captured
    in the statements: JSON arrays in the same order, written by `CODECS`, joined
    by commas, UTF-8 bytes per drain that Python never takes apart (but for a
    row already kept, which is rare: the same row changed twice in one batch).
    """

    rows: dict[str, dict[int, tuple[Any, ...]]] = dataclasses.field(default_factory=dict)
    json_rows: dict[str, list[bytes]] = dataclasses.field(default_factory=dict)
    deleted: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    kept: dict[str, set[int]] = dataclasses.field(default_factory=dict)  # ids, either way

    def add(self, table: str, op: str, rows: Iterable[Sequence[Any]]) -> list[int]:
        """Keep the rows' images; their ids."""
        mine = self.rows.setdefault(table, {})
        kept = self.kept.setdefault(table, set())
        at = ID_AT[table]
        ids = []
        for row in rows:
            ids.append(row[at])
            if row[at] not in kept:
                kept.add(row[at])
                mine[row[at]] = tuple(row)
        if op == "delete" and ids:
            self.deleted.setdefault(table, set()).update(ids)
        return ids

    def add_json(self, table: str, images: bytes, ids: list[int], steps: list[int],
                 deleted: list[int]) -> None:
        """Keep PostgreSQL's images of the rows `ids`, kept by the statements
        `steps` (in the same order), of which `deleted` were deleted."""
        kept = self.kept.setdefault(table, set())
        new = set(ids)
        if len(new) < len(ids) or not kept.isdisjoint(new):  # rare: a row kept twice
            images = _first(table, images, ids, steps, kept)
        kept |= new
        if images:
            self.json_rows.setdefault(table, []).append(images)
        if deleted:
            self.deleted.setdefault(table, set()).update(deleted)

    def __bool__(self) -> bool:
        return any(self.rows.values()) or any(self.json_rows.values())


def _first(table: str, images: bytes, ids: list[int], steps: list[int],
           kept: set[int]) -> bytes:
    """`images` but for the rows already `kept`, each row's earliest image only."""
    rows = json.loads(b"[" + images + b"]")
    at = ID_AT[table]
    if [row[at] for row in rows] != ids:
        raise VaultError(f"the images of {table} came in another order than their ids")
    first: dict[int, Any] = {}
    for _, row in sorted(zip(steps, rows, strict=True), key=lambda pair: pair[0]):
        if row[at] not in kept:
            first.setdefault(row[at], row)
    kept_json = json.dumps(list(first.values()), ensure_ascii=False, separators=(",", ":"))
    return kept_json[1:-1].encode()
