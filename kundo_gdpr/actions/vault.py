"""The safety window: an erase kept undoable for `[erase] undo_hours` (crypto-shredding).

While an erase runs in a `watched` session, every UPDATE and DELETE it issues
on a desk table first reads the rows it is about to change (all columns, as
the driver gives them, so restoring writes back the same bytes), and so do
the rows a DELETE will reach through ON DELETE CASCADE / SET NULL. When the
batch commits, those before images are sealed with the request's random key
(AES-256-GCM) into one `vault_batches` row, in the same transaction: the
vault holds exactly what the committed batches took, never more or less.

A statement the capture cannot see (raw SQL, a Core statement on the bare
connection) changing a desk table inside a watched session raises
`VaultError` before it runs: an erase is never half kept.

`undo` restores every row (inserting the deleted, writing back the changed)
or nothing; `close_due` deletes the key and the batches when the window ends.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Connection,
    Delete,
    Engine,
    Table,
    Update,
    bindparam,
    column,
    event,
    func,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from kundo_gdpr.models import (
    Attachment,
    Base,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
    UndoWindow,
    VaultBatch,
    utcnow,
)

# Session.info keys: the window a session's erase belongs to, and the images
# captured in its open transaction.
WATCH = "kundo_gdpr.vault.watch"
CAPTURED = "kundo_gdpr.vault.captured"
# Connection.info keys: inside a watched transaction; a captured statement is running.
_WATCHED = "kundo_gdpr.vault.watched"
_ARMED = "kundo_gdpr.vault.armed"
# Asks the desk's SQL eraser for one statement per change (no PostgreSQL
# data-modifying CTEs), so that each change passes the capture.
STATEMENT_BY_STATEMENT = "statement_by_statement"

DESK_TABLES: dict[str, Table] = {
    t.name: t for t in (ForumPost.__table__, MailConversation.__table__, MailMessage.__table__,
                        ChatSession.__table__, ChatMessage.__table__, Attachment.__table__)
    if isinstance(t, Table)
}
_DML = re.compile(r'^\s*(?:DELETE\s+FROM|UPDATE)\s+"?(\w+)', re.IGNORECASE)
_CTE_DML = re.compile(r'\b(?:DELETE\s+FROM|UPDATE)\s+"?(\w+)', re.IGNORECASE)

Key = tuple[str, int]  # (table, id)


class VaultError(Exception):
    """A change inside a watched erase that the vault could not keep."""


class UndoRefused(Exception):
    """Undo is not possible; `reason` is a stable code, `detail` its arguments."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Watch:
    request_id: int | None  # the erase of a request, or
    hours: int
    run_id: int | None = None  # the run of a retention schedule


@dataclasses.dataclass(frozen=True)
class Image:
    table: str
    op: str  # "delete" | "update"
    values: dict[str, Any]

    @property
    def key(self) -> Key:
        return self.table, int(self.values["id"])


def watched(
    factory: sessionmaker[Session], request_id: int | None, hours: int,
    run_id: int | None = None,
) -> sessionmaker[Session]:
    """Sessions like `factory`'s whose desk changes go to the request's (or the
    schedule run's) vault. With `hours` 0 (no window) it is `factory` itself.
    """
    if hours <= 0:
        return factory
    info = {WATCH: Watch(request_id, hours, run_id), STATEMENT_BY_STATEMENT: True}
    return sessionmaker(factory.kw["bind"], expire_on_commit=False, info=info)


# -- capture -----------------------------------------------------------------------


@event.listens_for(Session, "after_begin")
def _mark_connection(session: Session, _tx: SessionTransaction, conn: Connection) -> None:
    if WATCH in session.info:
        conn.info[_WATCHED] = True
        session.info[CAPTURED] = []
        session.info["kundo_gdpr.vault.conn"] = conn


def _unmark(session: Session) -> None:
    conn = session.info.pop("kundo_gdpr.vault.conn", None)
    if conn is not None:
        conn.info.pop(_WATCHED, None)
        conn.info.pop(_ARMED, None)
    session.info.pop(CAPTURED, None)


event.listen(Session, "after_commit", _unmark)
event.listen(Session, "after_rollback", _unmark)


@event.listens_for(Session, "do_orm_execute")
def _capture(state: ORMExecuteState) -> Any:
    if WATCH not in state.session.info or not (state.is_update or state.is_delete):
        return None
    stmt = state.statement
    assert isinstance(stmt, Update | Delete)
    target = DESK_TABLES.get(getattr(stmt.table, "name", ""))
    if target is None:
        return None
    conn = state.session.connection()
    captured: list[Image] = state.session.info.setdefault(CAPTURED, [])
    op = "delete" if state.is_delete else "update"
    where = stmt.whereclause
    if where is None:  # an ORM bulk UPDATE by primary key: a list of parameter sets
        params = state.parameters
        sets: list[Any] = list(params) if isinstance(params, list) else [params or {}]
        ids = [p["id"] for p in sets]
        where = target.c.id.in_(ids) if ids else None
    if where is not None:
        rows = _read(conn, target, where)
        captured.extend(Image(target.name, op, r) for r in rows)
        if op == "delete" and rows:
            captured.extend(_reached(conn, target, [r["id"] for r in rows]))
    conn.info[_ARMED] = True
    try:
        return state.invoke_statement()
    finally:
        conn.info.pop(_ARMED, None)


def _read(conn: Connection, target: Table, where: Any) -> list[dict[str, Any]]:
    """The rows as stored: the driver's values, no column type's conversion."""
    raw: list[Any] = [column(c.name) for c in target.columns]
    stmt = select(*raw).select_from(target).where(where)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def _reached(conn: Connection, parent: Table, ids: list[int]) -> Iterator[Image]:
    """Rows a delete of `ids` in `parent` changes through foreign keys."""
    for child in DESK_TABLES.values():
        for fk in child.foreign_keys:
            if fk.column.table is not parent or fk.ondelete not in ("CASCADE", "SET NULL"):
                continue
            rows = _read(conn, child, fk.parent.in_(ids))
            if fk.ondelete == "SET NULL":
                yield from (Image(child.name, "update", r) for r in rows)
                continue
            yield from (Image(child.name, "delete", r) for r in rows)
            if rows:
                yield from _reached(conn, child, [r["id"] for r in rows])


@event.listens_for(Engine, "before_cursor_execute")
def _guard(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if not conn.info.get(_WATCHED) or conn.info.get(_ARMED):
        return
    first = _DML.match(statement)
    names = [first.group(1)] if first else []
    if statement.lstrip()[:4].upper() == "WITH":
        names = _CTE_DML.findall(statement)
    touched = [n for n in names if n.lower() in DESK_TABLES]
    if touched:
        raise VaultError(f"a change to {touched[0]} that the undo vault cannot keep")


@event.listens_for(Session, "before_commit")
def _seal_on_commit(session: Session) -> None:
    watch: Watch | None = session.info.get(WATCH)
    captured: list[Image] = session.info.get(CAPTURED) or []
    if watch is None or not captured:
        return
    window = _window(session, watch)
    if window.key is None:
        raise VaultError(f"the undo window {window.id} is closed")
    seq = session.scalar(select(func.coalesce(func.max(VaultBatch.seq), 0))
                         .where(VaultBatch.window_id == window.id)) or 0
    nonce, sealed = seal(window.key, _aad(window, seq + 1), captured)
    session.add(VaultBatch(window_id=window.id, seq=seq + 1, nonce=nonce, sealed=sealed))
    session.info[CAPTURED] = []


def _window(session: Session, watch: Watch) -> UndoWindow:
    mine = (UndoWindow.request_id == watch.request_id if watch.request_id is not None
            else UndoWindow.retention_run_id == watch.run_id)
    window = session.scalar(select(UndoWindow).where(mine))
    if window is None:
        now = utcnow()
        window = UndoWindow(request_id=watch.request_id, retention_run_id=watch.run_id,
                            key=AESGCM.generate_key(bit_length=256),
                            opened_at=now, closes_at=now + dt.timedelta(hours=watch.hours))
        session.add(window)
        session.flush()
    return window


# -- sealing ------------------------------------------------------------------------


def seal(key: bytes, aad: bytes, images: Iterable[Image]) -> tuple[bytes, bytes]:
    data = [[i.table, i.op, {k: _encode(v) for k, v in i.values.items()}] for i in images]
    plain = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 1)
    nonce = os.urandom(12)
    return nonce, AESGCM(key).encrypt(nonce, plain, aad)


def unseal(key: bytes, aad: bytes, nonce: bytes, sealed: bytes) -> list[Image]:
    data = json.loads(zlib.decompress(AESGCM(key).decrypt(nonce, sealed, aad)))
    return [Image(t, op, {k: _decode(v) for k, v in values.items()}) for t, op, values in data]


def _aad(window: UndoWindow, seq: int) -> bytes:
    # Binds each batch to its erase and place: batches cannot be swapped unnoticed.
    if window.request_id is not None:
        return f"kundo-gdpr vault {window.request_id}:{seq}".encode()
    return f"kundo-gdpr vault run {window.retention_run_id}:{seq}".encode()


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | memoryview):
        return {"b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    raise VaultError(f"the undo vault cannot keep a {type(value).__name__} value")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "b" in value:
        return base64.b64decode(value["b"])
    if "t" in value:
        return dt.datetime.fromisoformat(value["t"])
    return dt.date.fromisoformat(value["d"])


# -- undo ------------------------------------------------------------------------------


def window_of(session: Session, request_id: int) -> UndoWindow | None:
    return session.scalar(select(UndoWindow).where(UndoWindow.request_id == request_id))


def run_window(session: Session, run_id: int) -> UndoWindow | None:
    return session.scalar(select(UndoWindow).where(UndoWindow.retention_run_id == run_id))


def open_until(session: Session, request_id: int) -> dt.datetime | None:
    """Until when the request's erase can be undone; None: it cannot (any more)."""
    window = window_of(session, request_id)
    if window is None or window.key is None:
        return None
    return window.closes_at


def images(session: Session, window: UndoWindow) -> dict[Key, Image]:
    """The earliest image of every row the erase changed: its state before the erase.

    A row deleted after an earlier change (both in this erase) is restored
    by inserting its first image.
    """
    assert window.key is not None
    first: dict[Key, Image] = {}
    deleted: set[Key] = set()
    batches = session.scalars(select(VaultBatch).where(VaultBatch.window_id == window.id)
                              .order_by(VaultBatch.seq))
    for batch in batches:
        aad = _aad(window, batch.seq)
        for image in unseal(window.key, aad, batch.nonce, batch.sealed):
            first.setdefault(image.key, image)
            if image.op == "delete":
                deleted.add(image.key)
    return {k: dataclasses.replace(i, op="delete" if k in deleted else i.op)
            for k, i in first.items()}


def restore(session: Session, window: UndoWindow, now: dt.datetime) -> dict[str, int]:
    """Put back every row the erase took, exactly; or raise `UndoRefused` and change nothing.

    Refused when the window has closed, or when a later erase still in its
    window, or any other change since, touched the same rows ("overlap").
    Returns the number of rows restored per table.
    """
    if window.key is None or now >= window.closes_at:
        raise UndoRefused("window_closed", closed_at=window.closes_at)
    mine = images(session, window)
    overlap = sorted(_overlap(session, window, mine))
    if overlap:
        raise UndoRefused("overlap", rows=[f"{t}#{i}" for t, i in overlap])
    restored: dict[str, int] = {}
    order = [t.name for t in Base.metadata.sorted_tables if t.name in DESK_TABLES]
    for name in order:
        rows = [i.values for i in mine.values() if i.table == name and i.op == "delete"]
        # Openers before replies: a reply's topic_id needs its opener back first.
        rows.sort(key=lambda r: (r.get("topic_id") is not None, r["id"]))
        if rows:
            session.execute(insert(_raw(DESK_TABLES[name])), rows)
        restored[name] = len(rows)
    for name in order:
        raw = _raw(DESK_TABLES[name])
        changed = [{**i.values, "_id": i.values["id"]} for i in mine.values()
                   if i.table == name and i.op == "update"]
        if changed:
            session.execute(update(raw).where(raw.c.id == bindparam("_id")), changed)
        restored[name] = restored.get(name, 0) + len(changed)
    shred(session, window)
    window.undone_at = now
    return {k: v for k, v in restored.items() if v}


def _raw(target: Table) -> Any:
    # Untyped columns: values go to the driver as they came from it.
    return table(target.name, *(column(c.name) for c in target.columns))


def _overlap(session: Session, window: UndoWindow, mine: dict[Key, Image]) -> set[Key]:
    """Rows of this erase that something changed since: restoring them would mix states."""
    later: set[Key] = set()
    for other in session.scalars(select(UndoWindow).where(
            UndoWindow.id > window.id, UndoWindow.key.is_not(None))):
        later.update(images(session, other))
    clash = later & mine.keys()
    for name, target in DESK_TABLES.items():
        ids = {k[1]: i.op for k, i in mine.items() if k[0] == name}
        for chunk in _chunks(sorted(ids), 5000):
            present = set(session.scalars(select(target.c.id).where(target.c.id.in_(chunk))))
            clash.update((name, i) for i in chunk
                         if (i in present) == (ids[i] == "delete"))
    return clash


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def shred(session: Session, window: UndoWindow) -> None:
    """Delete the batches and the key: nothing of the before images is readable after."""
    session.query(VaultBatch).filter(VaultBatch.window_id == window.id).delete(
        synchronize_session=False)
    window.key = None


def due(session: Session, now: dt.datetime) -> list[UndoWindow]:
    return list(session.scalars(select(UndoWindow).where(
        UndoWindow.key.is_not(None), UndoWindow.closes_at <= now).order_by(UndoWindow.id)))

