"""PostgreSQL: the before images kept inside the erasing statement itself.

The SQL eraser's one statement per batch (data-modifying CTEs) gets CTEs that
copy the images of every row it changes, cascades to any depth included,
into the connection's temp tables, in the same statement and snapshot: no
read before it, no extra round trip. `drain` moves them into the
transaction's `Capture` before anything else is captured, and at commit.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Delete,
    Engine,
    Select,
    Table,
    Update,
    column,
    event,
    insert,
    literal,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.sql import visitors

from kundo_gdpr.actions.vault.base import (
    ARMED,
    COLUMNS,
    DESK_TABLES,
    IN_STATEMENT,
    PENDING,
    PREPARED,
    TEMP,
    WATCHED,
    Capture,
    VaultError,
)


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
    if (not conn.info.get(WATCHED) or conn.info.get(ARMED)
            or conn.dialect.name != "postgresql" or not isinstance(element, Select)):
        return element, multiparams, params
    parts = _changes(element)
    if not parts:
        return element, multiparams, params
    _prepare(conn)
    names = iter(f"vault_{n}" for n in itertools.count())
    pending: set[str] = conn.info.setdefault(PENDING, set())
    for part, target, change in parts:
        if "id" not in part.c:
            raise VaultError(f"a change to {target.name} that returns no ids")
        ids = select(part.c.id).correlate(None)
        kept = ([(target, "update", target.c.id.in_(ids))] if isinstance(change, Update)
                else list(_cascade(target, ids, names)))
        for table_, op, where in kept:
            element = element.add_cte(_keep(table_, op, where).cte(next(names)))
            pending.add(table_.name)
    conn.info[IN_STATEMENT] = True  # for the guard, which sees it next
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
    if conn.info.get(PREPARED):
        return
    sql = ["SET LOCAL jit = off"]
    if not conn.info.get(TEMP):
        sql += [f"CREATE TEMP TABLE IF NOT EXISTS vault_{name} (vault_seq bigserial, "
                f"vault_op text, LIKE {name}) ON COMMIT DELETE ROWS" for name in DESK_TABLES]
    conn.info[ARMED] = True
    try:
        conn.exec_driver_sql("; ".join(sql))
    finally:
        conn.info.pop(ARMED, None)
    conn.info[TEMP] = conn.info[PREPARED] = True


def drain(conn: Connection, capture: Capture) -> None:
    """Move what statements kept in the temp tables into `capture`, in their order."""
    pending: set[str] = conn.info.pop(PENDING, set())
    for name in sorted(pending):
        columns = ", ".join(f'"{c}"' for c in COLUMNS[name])
        rows = conn.exec_driver_sql(f"DELETE FROM pg_temp.vault_{name} "
                                    f"RETURNING vault_seq, vault_op, {columns}")
        for row in sorted(rows, key=lambda r: int(r[0])):
            capture.add(name, row[1], [row[2:]])
