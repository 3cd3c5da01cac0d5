"""The safety window: an erase kept undoable for `[erase] undo_hours` (crypto-shredding).

While an erase runs in a `watched` session, the before image of every row it
deletes or changes (all columns, as the driver gives them, so restoring writes
back the same bytes), and of every row a DELETE reaches through ON DELETE
CASCADE / SET NULL, is kept in the transaction's `Capture`, taken in the
statement itself wherever the database allows:

- an ORM DELETE returns its rows (DELETE … RETURNING) instead of a read
  before it; what it will reach through foreign keys is read first;
- an ORM UPDATE (and a bulk UPDATE by primary key) reads its rows first;
- on PostgreSQL, the SQL eraser's one statement per batch (data-modifying
  CTEs) gets CTEs that copy the images, cascades to any depth included, into
  the connection's temp tables in the same statement and snapshot; they are
  drained into the `Capture` before the next capture and at commit.

When the batch commits, its images are sealed as one blob with the request's
random key (AES-256-GCM, a fresh nonce) into one `vault_batches` row, in the
same transaction: the vault holds exactly what the committed batches took.

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
import itertools
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    ARRAY,
    CTE,
    ColumnElement,
    Connection,
    Delete,
    Engine,
    Integer,
    Row,
    Select,
    Table,
    Update,
    any_,
    bindparam,
    column,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    table,
    true,
    update,
)
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql import visitors

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
# PostgreSQL: this connection has the vault's temp tables; the desk tables whose
# images wait in them; the statement about to run keeps its own images.
_TEMP = "kundo_gdpr.vault.temp"
_PREPARED = "kundo_gdpr.vault.prepared"  # this transaction
_PENDING = "kundo_gdpr.vault.pending"
_IN_STATEMENT = "kundo_gdpr.vault.in_statement"

DESK_TABLES: dict[str, Table] = {
    t.name: t for t in (ForumPost.__table__, MailConversation.__table__, MailMessage.__table__,
                        ChatSession.__table__, ChatMessage.__table__, Attachment.__table__)
    if isinstance(t, Table)
}
_DML = re.compile(r'^\s*(?:DELETE\s+FROM|UPDATE)\s+"?(\w+)', re.IGNORECASE)
_CTE_DML = re.compile(r'\b(?:DELETE\s+FROM|UPDATE)\s+"?(\w+)', re.IGNORECASE)

Key = tuple[str, int]  # (table, id)
# Each desk table's columns in the order its before images keep them.
COLUMNS = {name: [c.name for c in t.columns] for name, t in DESK_TABLES.items()}
_ID = {name: columns.index("id") for name, columns in COLUMNS.items()}


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
    info = {WATCH: Watch(request_id, hours, run_id)}
    return sessionmaker(factory.kw["bind"], expire_on_commit=False, info=info)


# -- capture -----------------------------------------------------------------------


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
        at = _ID[table]
        ids = []
        for row in rows:
            ids.append(row[at])
            mine.setdefault(row[at], tuple(row))
        if op == "delete" and ids:
            self.deleted.setdefault(table, set()).update(ids)
        return ids

    def __bool__(self) -> bool:
        return any(self.rows.values())


@event.listens_for(Session, "after_begin")
def _mark_connection(session: Session, _tx: SessionTransaction, conn: Connection) -> None:
    if WATCH in session.info:
        conn.info[_WATCHED] = True
        session.info[CAPTURED] = Capture()
        session.info["kundo_gdpr.vault.conn"] = conn


def _unmark(session: Session) -> None:
    conn = session.info.pop("kundo_gdpr.vault.conn", None)
    if conn is not None:
        for key in (_WATCHED, _ARMED, _PENDING, _IN_STATEMENT, _PREPARED):
            conn.info.pop(key, None)
    session.info.pop(CAPTURED, None)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    conn = session.info.get("kundo_gdpr.vault.conn")
    if conn is not None:  # temp tables made in this transaction are gone with it
        conn.info.pop(_TEMP, None)
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
    _drain(conn, capture)  # what earlier statements kept comes first
    where = stmt.whereclause
    if where is None:  # an ORM bulk UPDATE by primary key: a list of parameter sets
        params = state.parameters
        sets: list[Any] = list(params) if isinstance(params, list) else [params or {}]
        ids = [p["id"] for p in sets]
        where = _among(conn, target.c.id, ids) if ids else None
    plain = where is not None and not getattr(stmt, "_returning", ())
    if plain and conn.dialect.name == "postgresql" and stmt.whereclause is not None:
        return _in_one_statement(conn, target, stmt)
    conn.info[_ARMED] = True
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
        conn.info.pop(_ARMED, None)


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


# -- PostgreSQL: capture inside the statement ----------------------------------------


@event.listens_for(Engine, "before_execute", retval=True)
def _capture_in_statement(
    conn: Connection, element: Any, multiparams: Any, params: Any, _options: Any,
) -> tuple[Any, Any, Any]:
    """A SELECT whose data-modifying CTEs change desk tables (the SQL eraser's one
    statement per batch) gets CTEs that copy the before images of every row those
    parts and their cascades change into this connection's `pg_temp.vault_*`
    tables, in the same statement and snapshot: no read before, no extra round trip.
    They are drained into the transaction's `Capture` before anything else is
    captured, and at commit.
    """
    if (not conn.info.get(_WATCHED) or conn.info.get(_ARMED)
            or conn.dialect.name != "postgresql" or not isinstance(element, Select)):
        return element, multiparams, params
    parts = _changes(element)
    if not parts:
        return element, multiparams, params
    _prepare(conn)
    names = iter(f"vault_{n}" for n in itertools.count())
    pending: set[str] = conn.info.setdefault(_PENDING, set())
    for part, target, change in parts:
        if "id" not in part.c:
            raise VaultError(f"a change to {target.name} that returns no ids")
        ids = select(part.c.id).correlate(None)
        kept = ([(target, "update", target.c.id.in_(ids))] if isinstance(change, Update)
                else list(_cascade(target, ids, names)))
        for table_, op, where in kept:
            element = element.add_cte(_keep(table_, op, where).cte(next(names)))
            pending.add(table_.name)
    conn.info[_IN_STATEMENT] = True  # for the guard, which sees it next
    return element, multiparams, params


def _changes(element: Select[Any]) -> list[tuple[CTE, Table, Delete | Update]]:
    """The statement's data-modifying CTEs on desk tables."""
    found: dict[CTE, tuple[CTE, Table, Delete | Update]] = {}
    for cte in visitors.iterate(element):
        if isinstance(cte, CTE) and isinstance(cte.element, Delete | Update):
            target = DESK_TABLES.get(getattr(cte.element.table, "name", ""))
            if target is not None:
                found[cte] = (cte, target, cte.element)
    return list(found.values())


def _cascade(target: Table, ids: Select[Any], names: Iterator[str],
             ) -> Iterator[tuple[Table, str, ColumnElement[bool]]]:
    """What deleting `ids` of `target` deletes or changes, through ON DELETE CASCADE
    (to any depth) and SET NULL, as (table, op, which rows)."""
    edges = [(child, fk) for child in DESK_TABLES.values() for fk in child.foreign_keys
             if fk.column.table is target and fk.ondelete in ("CASCADE", "SET NULL")]
    own = [fk for child, fk in edges if child is target and fk.ondelete == "CASCADE"]
    if own:  # a tree (a thread's replies): all of it, recursively
        tree = (select(target.c.id.label("id")).where(target.c.id.in_(ids)).correlate(None)
                .cte(next(names), recursive=True))
        up = tree.alias()
        # An index lookup per row of the tree (OFFSET 0 keeps the planner from
        # making it a hash join over the whole table, sized by a guess).
        below = (select(target.c.id).where(or_(*(fk.parent == up.c.id for fk in own)))
                 .offset(0).lateral())
        tree = tree.union(select(below.c.id).select_from(up.join(below, true())))
        ids = select(tree.c.id).correlate(None)
    yield target, "delete", target.c.id.in_(ids)
    for child, fk in edges:
        if fk.ondelete == "SET NULL":
            yield child, "update", fk.parent.in_(ids)
        elif child is not target:
            yield from _cascade(child, select(child.c.id).where(fk.parent.in_(ids))
                                .correlate(None), names)


def _keep(target: Table, op: str, where: ColumnElement[bool]) -> Any:
    """INSERT the rows' images (as the statement's snapshot has them) into the temp table."""
    columns = COLUMNS[target.name]
    into = table(f"vault_{target.name}", column("vault_op"), *map(column, columns),
                 schema="pg_temp")
    rows = select(literal(op), *target.c).where(where).correlate(None)
    return insert(into).from_select(["vault_op", *columns], rows)


def _prepare(conn: Connection) -> None:
    """This session's temp tables (made once per connection: their rows never outlive
    a transaction, drained and ON COMMIT DELETE ROWS; a rollback of the transaction
    that made them drops them, and the flag with them, `_rolled_back`); and no JIT
    in this transaction: the tree's recursive guess of its size makes the planner
    compile for a second where the statement runs in milliseconds."""
    if conn.info.get(_PREPARED):
        return
    sql = ["SET LOCAL jit = off"]
    if not conn.info.get(_TEMP):
        sql += [f"CREATE TEMP TABLE IF NOT EXISTS vault_{name} (vault_seq bigserial, "
                f"vault_op text, LIKE {name}) ON COMMIT DELETE ROWS" for name in DESK_TABLES]
    conn.info[_ARMED] = True
    try:
        conn.exec_driver_sql("; ".join(sql))
    finally:
        conn.info.pop(_ARMED, None)
    conn.info[_TEMP] = conn.info[_PREPARED] = True


def _drain(conn: Connection, capture: Capture) -> None:
    """Move what statements kept in the temp tables into `capture`, in their order."""
    pending: set[str] = conn.info.pop(_PENDING, set())
    for name in sorted(pending):
        columns = ", ".join(f'"{c}"' for c in COLUMNS[name])
        rows = conn.exec_driver_sql(f"DELETE FROM pg_temp.vault_{name} "
                                    f"RETURNING vault_seq, vault_op, {columns}")
        for row in sorted(rows, key=lambda r: int(r[0])):
            capture.add(name, row[1], [row[2:]])


@event.listens_for(Engine, "before_cursor_execute")
def _guard(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if not conn.info.get(_WATCHED) or conn.info.get(_ARMED):
        return
    if conn.info.pop(_IN_STATEMENT, False) and "pg_temp.vault_" in statement:
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
    conn = session.info.get("kundo_gdpr.vault.conn")
    if watch is None or capture is None or conn is None:
        return
    _drain(conn, capture)
    if not capture:
        return
    window = _window(session, watch)
    if window.key is None:
        raise VaultError(f"the undo window {window.id} is closed")
    seq = session.scalar(select(func.coalesce(func.max(VaultBatch.seq), 0))
                         .where(VaultBatch.window_id == window.id)) or 0
    nonce, sealed = seal(window.key, _aad(window, seq + 1), capture)
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


# -- sealing ------------------------------------------------------------------------


def seal(key: bytes, aad: bytes, capture: Capture) -> tuple[bytes, bytes]:
    """One blob for the batch: per table its column names, rows and deleted ids,
    as compact JSON (version 2), compressed, then AES-GCM with a fresh nonce."""
    tables = [[name, COLUMNS[name], list(rows.values()), sorted(capture.deleted.get(name, ()))]
              for name, rows in capture.rows.items() if rows]
    # The encoder's `default` sees only what JSON has no form for: no Python per row.
    plain = json.dumps({"v": 2, "t": tables}, separators=(",", ":"), default=_tagged).encode()
    nonce = os.urandom(12)
    return nonce, AESGCM(key).encrypt(nonce, zlib.compress(plain, 1), aad)


def _tagged(value: Any) -> Any:
    encoded = _encode(value)
    if encoded is value:  # a subclass of a plain type, say
        raise VaultError(f"the undo vault cannot keep a {type(value).__name__} value")
    return encoded


def unseal(key: bytes, aad: bytes, nonce: bytes, sealed: bytes) -> list[Image]:
    data = json.loads(zlib.decompress(AESGCM(key).decrypt(nonce, sealed, aad)))
    if isinstance(data, list):  # version 1: [table, op, {column: value}] per image
        return [Image(t, op, {k: _decode(v) for k, v in values.items()})
                for t, op, values in data]
    found = []
    for name, columns, rows, deleted in data["t"]:
        gone = set(deleted)
        for row in rows:
            values = {c: _decode(v) for c, v in zip(columns, row, strict=True)}
            found.append(Image(name, "delete" if values["id"] in gone else "update", values))
    return found


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

