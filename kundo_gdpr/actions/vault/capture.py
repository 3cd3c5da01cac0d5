"""Capturing a watched erase's before images, and sealing them at each commit.

An ORM DELETE returns its rows (DELETE ... RETURNING) instead of a read
before it, and what it will reach through foreign keys is read first; an ORM
UPDATE (and a bulk UPDATE by primary key) reads its rows first. On
PostgreSQL a plain UPDATE or DELETE becomes a data-modifying CTE, whose
images the statement keeps itself (`statement`). A statement the capture
cannot see changing a desk table inside a watched session raises
`VaultError` before it runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    ARRAY,
    Connection,
    Delete,
    Engine,
    Integer,
    Row,
    Table,
    Update,
    any_,
    bindparam,
    column,
    event,
    func,
    select,
)
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from kundo_gdpr.actions.vault.base import (
    ARMED,
    CAPTURED,
    CONNECTION,
    DESK_TABLES,
    IN_STATEMENT,
    TEMP,
    TRANSACTION_FLAGS,
    WATCH,
    WATCHED,
    Capture,
    VaultError,
)
from kundo_gdpr.actions.vault.seal import aad, seal
from kundo_gdpr.actions.vault.statement import drain
from kundo_gdpr.models import UndoWindow, VaultBatch, utcnow

_DML = re.compile(r'^\s*(?:DELETE\s+FROM|UPDATE)\s+"?(\w+)', re.IGNORECASE)
_CTE_DML = re.compile(r'\b(?:DELETE\s+FROM|UPDATE)\s+"?(\w+)', re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Watch:
    request_id: int | None  # the erase of a request, or
    hours: int
    run_id: int | None = None  # the run of a retention schedule


def watched(
    factory: sessionmaker[Session], request_id: int | None, hours: int,
    run_id: int | None = None,
) -> sessionmaker[Session]:
    """Sessions like `factory`'s whose desk changes go to the request's (or the
    schedule run's) vault. With `hours` 0 (no window) it is `factory` itself.
    """
    if hours <= 0:
        return factory
    info = {WATCH: Watch(request_id, hours, run_id)}
    return sessionmaker(factory.kw["bind"], expire_on_commit=False, info=info)


@event.listens_for(Session, "after_begin")
def _mark_connection(session: Session, _tx: SessionTransaction, conn: Connection) -> None:
    if WATCH in session.info:
        conn.info[WATCHED] = True
        session.info[CAPTURED] = Capture()
        session.info[CONNECTION] = conn


def _unmark(session: Session) -> None:
    conn = session.info.pop(CONNECTION, None)
    if conn is not None:
        for key in TRANSACTION_FLAGS:
            conn.info.pop(key, None)
    session.info.pop(CAPTURED, None)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    conn = session.info.get(CONNECTION)
    if conn is not None:  # temp tables made in this transaction are gone with it
        conn.info.pop(TEMP, None)
    _unmark(session)


event.listen(Session, "after_commit", _unmark)


class _Counted(IteratorResult[Any]):
    """What a captured change gives its caller: no rows, and how many it changed."""

    rowcount = 0


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
    capture: Capture = state.session.info.setdefault(CAPTURED, Capture())
    drain(conn, capture)  # what earlier statements kept comes first
    where = stmt.whereclause
    if where is None:  # an ORM bulk UPDATE by primary key: a list of parameter sets
        params = state.parameters
        sets: list[Any] = list(params) if isinstance(params, list) else [params or {}]
        ids = [p["id"] for p in sets]
        where = _among(conn, target.c.id, ids) if ids else None
    plain = where is not None and not getattr(stmt, "_returning", ())
    if plain and conn.dialect.name == "postgresql" and stmt.whereclause is not None:
        return _in_one_statement(conn, target, stmt)
    conn.info[ARMED] = True
    try:
        if isinstance(stmt, Delete) and plain:
            return _delete(conn, capture, target, stmt, where)
        if where is not None:
            op = "delete" if state.is_delete else "update"
            ids = capture.add(target.name, op, _read(conn, target, where))
            if op == "delete" and ids:
                _reached(conn, capture, target, ids)
        return state.invoke_statement()
    finally:
        conn.info.pop(ARMED, None)


def _in_one_statement(conn: Connection, target: Table, stmt: Update | Delete) -> _Counted:
    """PostgreSQL: the change as a data-modifying CTE, so that its images (and its
    cascades') are kept in the statement itself (`_capture_in_statement`)."""
    part = stmt.returning(target.c.id).cte("vault_change")
    result = _Counted(SimpleResultMetaData([]), iter(()))
    result.rowcount = int(conn.execute(select(func.count()).select_from(part)).scalar_one())
    return result


def _delete(conn: Connection, capture: Capture, target: Table, stmt: Delete,
            where: Any) -> _Counted:
    """The DELETE returns its rows' images itself (one statement, not a read before
    it); what it reaches through foreign keys is read first, as that is gone after."""
    # The ids first: SQLite plans `child.fk IN (<list>)` with the child's index, and
    # `IN (<subquery>)` at times as a scan of the child table.
    doomed = list(conn.scalars(select(target.c.id).where(where)))
    if doomed:
        _reached(conn, capture, target, doomed)
    rows = conn.execute(stmt.returning(*_raw_columns(target))).all()
    capture.add(target.name, "delete", rows)
    result = _Counted(SimpleResultMetaData([]), iter(()))
    result.rowcount = len(rows)
    return result


def _read(conn: Connection, target: Table, where: Any) -> list[Row[Any]]:
    """The rows as stored: the driver's values, no column type's conversion."""
    return list(conn.execute(select(*_raw_columns(target)).select_from(target).where(where)))


def _raw_columns(target: Table) -> list[Any]:
    # Untyped, so that no column type converts what the driver returns.
    return [column(c.name) for c in target.columns]


def _among(conn: Connection, key: Any, ids: list[int]) -> Any:
    # PostgreSQL: one array parameter, not thousands (parsed and planned once).
    if conn.dialect.name == "postgresql":
        return key == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return key.in_(ids)


def _reached(conn: Connection, capture: Capture, parent: Table, doomed: list[int]) -> None:
    """Keep the rows that deleting `doomed` (ids of `parent`) changes through foreign
    keys: ON DELETE CASCADE deletes them, SET NULL changes them."""
    for child in DESK_TABLES.values():
        for fk in child.foreign_keys:
            if fk.column.table is not parent or fk.ondelete not in ("CASCADE", "SET NULL"):
                continue
            rows = _read(conn, child, _among(conn, fk.parent, doomed))
            if fk.ondelete == "SET NULL":
                capture.add(child.name, "update", rows)
                continue
            ids = capture.add(child.name, "delete", rows)
            if ids:
                _reached(conn, capture, child, ids)


@event.listens_for(Engine, "before_cursor_execute")
def _guard(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if not conn.info.get(WATCHED) or conn.info.get(ARMED):
        return
    if conn.info.pop(IN_STATEMENT, False) and "pg_temp.vault_" in statement:
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
    capture: Capture | None = session.info.get(CAPTURED)
    conn = session.info.get(CONNECTION)
    if watch is None or capture is None or conn is None:
        return
    drain(conn, capture)
    if not capture:
        return
    window = _window(session, watch)
    if window.key is None:
        raise VaultError(f"the undo window {window.id} is closed")
    seq = session.scalar(select(func.coalesce(func.max(VaultBatch.seq), 0))
                         .where(VaultBatch.window_id == window.id)) or 0
    nonce, sealed = seal(window.key, aad(window, seq + 1), capture)
    session.add(VaultBatch(window_id=window.id, seq=seq + 1, nonce=nonce, sealed=sealed))
    session.info[CAPTURED] = Capture()


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
