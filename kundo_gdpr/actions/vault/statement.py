"""PostgreSQL: the before images kept inside the erasing statement itself.

The SQL eraser's one statement per batch (data-modifying CTEs) gets CTEs that
copy the images of every row it changes, cascades to any depth included,
into the connection's temp table, in the same statement and snapshot: no
read before it, no extra round trip. The images are JSON text already
(`CODECS`), made by PostgreSQL: `drain` moves them into the transaction's
`Capture` (before anything else is captured, and at commit) in one statement
that returns a string per table, and Python never handles a row of them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Delete,
    Engine,
    Integer,
    Select,
    Table,
    Text,
    Update,
    and_,
    cast,
    column,
    event,
    exists,
    func,
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
    CODECS,
    DESK_TABLES,
    DRAINED,
    IN_STATEMENT,
    PREPARED,
    STEPS,
    TEMP,
    WATCHED,
    Capture,
    VaultError,
)

# The images kept by this transaction's statements, numbered by `step`: a row's
# first image is its earliest; within one statement they are of one snapshot,
# the same whichever part kept them. Not deleted when drained (a DELETE of its
# rows cost more than the rest of the drain): each drain takes the steps after
# the last, and the commit empties it.
_TEMP_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS vault_images (step integer, tbl text, "
               "op text, id bigint, image text) ON COMMIT DELETE ROWS")
_IMAGES = table("vault_images", *map(column, ("step", "tbl", "op", "id", "image")),
                schema="pg_temp")
# Per table, in one order: the images joined, their ids and steps; the ids deleted.
# All text, read as bytes: no value is decoded. No sort in SQL: Capture.add_json
# takes the first image of a row kept twice.
_DRAIN = ("SELECT tbl, string_agg(image, ','), string_agg(id::text, ','), "
          "string_agg(step::text, ','), string_agg(id::text, ',') FILTER (WHERE op = 'delete') "
          "FROM pg_temp.vault_images WHERE step > %(after)s GROUP BY tbl")


@event.listens_for(Engine, "before_execute", retval=True)
def _capture_in_statement(
    conn: Connection, element: Any, multiparams: Any, params: Any, _options: Any,
) -> tuple[Any, Any, Any]:
    """A SELECT whose data-modifying CTEs change desk tables (the SQL eraser's one
    statement per batch) gets CTEs that copy the before images of every row those
    parts and their cascades change into this connection's `pg_temp.vault_images`,
    in the same statement and snapshot: no read before, no extra round trip.
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
    plan = _Plan(iter(f"vault_{n}" for n in itertools.count()))
    for part, target, change in parts:
        if "id" not in part.c:
            raise VaultError(f"a change to {target.name} that returns no ids")
        if isinstance(change, Update):
            plan.updates.append((target, target.c.id.in_(select(part.c.id))))
        else:
            plan.delete(target, part)
    step = conn.info[STEPS] = conn.info.get(STEPS, 0) + 1  # the transaction's nth
    for target, op, where in plan.kept():
        element = element.add_cte(_keep(target, op, where, step).cte(next(plan.names)))
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


@dataclasses.dataclass
class _Plan:
    """What one statement's parts delete and change, their cascades included, each
    row kept once: a row two parts reach (a file its message's delete cascades to,
    deleted by a part of its own; a reply whose parent goes with it) is kept by
    one. Both read the statement's snapshot, so their images are the same, and
    a deleted row's image is kept as deleted."""

    names: Iterator[str]
    deletes: list[tuple[Table, CTE]] = dataclasses.field(default_factory=list)
    updates: list[tuple[Table, ColumnElement[bool]]] = dataclasses.field(default_factory=list)

    def delete(self, target: Table, ids: CTE) -> None:
        """Deleting `ids` (a CTE of ids) of `target`, and what that deletes or changes
        through ON DELETE CASCADE (to any depth) and SET NULL."""
        edges = [(child, fk) for child in DESK_TABLES.values() for fk in child.foreign_keys
                 if fk.column.table is target and fk.ondelete in ("CASCADE", "SET NULL")]
        own = [fk for child, fk in edges if child is target and fk.ondelete == "CASCADE"]
        if own:  # a tree (a thread's replies): all of it, recursively
            tree = (select(target.c.id.label("id")).where(target.c.id.in_(select(ids.c.id)))
                    .cte(next(self.names), recursive=True))
            up = tree.alias()
            # An index lookup per row of the tree (OFFSET 0 keeps the planner from
            # making it a hash join over the whole table, sized by a guess).
            below = (select(target.c.id).where(or_(*(fk.parent == up.c.id for fk in own)))
                     .offset(0).lateral())
            ids = tree.union(select(below.c.id).select_from(up.join(below, true())))
        earlier = [kept for table_, kept in self.deletes if table_ is target]
        if earlier:
            ids = (select(ids.c.id).where(*(_absent(ids.c.id, kept) for kept in earlier))
                   .cte(next(self.names)))
        self.deletes.append((target, ids))
        for child, fk in edges:
            if fk.ondelete == "SET NULL":
                self.updates.append((child, fk.parent.in_(select(ids.c.id))))
            elif child is not target:
                self.delete(child, select(child.c.id.label("id"))
                            .where(fk.parent.in_(select(ids.c.id))).cte(next(self.names)))

    def kept(self) -> Iterator[tuple[Table, str, ColumnElement[bool]]]:
        """(table, op, which rows) per image to keep."""
        for target, ids in self.deletes:
            yield target, "delete", target.c.id.in_(select(ids.c.id))
        for target, where in self.updates:
            gone = [_absent(target.c.id, ids) for table_, ids in self.deletes if table_ is target]
            yield target, "update", and_(where, *gone)


def _absent(key: ColumnElement[Any], ids: CTE) -> ColumnElement[bool]:
    # NOT EXISTS, not NOT IN: an anti-join, whatever the planner guesses of the
    # sizes (a recursive tree's guess is large: NOT IN would scan it per row).
    return ~exists().where(ids.c.id == key)


def _keep(target: Table, op: str, where: ColumnElement[bool], step: int) -> Any:
    """INSERT the rows' images (as the statement's snapshot has them) into the temp table."""
    rows = (select(literal(step, Integer), literal(target.name), literal(op), target.c.id,
                   _image(target)).where(where).correlate(None))
    return insert(_IMAGES).from_select(["step", "tbl", "op", "id", "image"], rows)


def _image(target: Table) -> ColumnElement[str]:
    """A row's image: a JSON array of its columns, bytes in base64 (`CODECS`)."""
    values = [func.encode(c, "base64") if codec == "b" else c
              for c, codec in zip(target.c, CODECS[target.name], strict=True)]
    return cast(func.json_build_array(*values), Text)


def _prepare(conn: Connection) -> None:
    """This session's temp table (made once per connection: its rows never outlive
    a transaction, ON COMMIT DELETE ROWS; a rollback of the transaction
    that made it drops it, and the flag with it, `_rolled_back`); and no JIT in
    this transaction: the tree's recursive guess of its size makes the planner
    compile for a second where the statement runs in milliseconds."""
    if conn.info.get(PREPARED):
        return
    sql = ["SET LOCAL jit = off"]
    if not conn.info.get(TEMP):
        sql.append(_TEMP_TABLE)
    conn.info[ARMED] = True
    try:
        conn.exec_driver_sql("; ".join(sql))
    finally:
        conn.info.pop(ARMED, None)
    conn.info[TEMP] = conn.info[PREPARED] = True


def drain(conn: Connection, capture: Capture) -> None:
    """Add what the statements since the last drain kept in the temp table to
    `capture`, in one round trip.

    Read from psycopg's result as it came (`pq.PGresult`): PostgreSQL's JSON stays
    the UTF-8 bytes that are sealed, never decoded and encoded again.
    """
    after, last = conn.info.get(DRAINED, 0), conn.info.get(STEPS, 0)
    if last == after:
        return
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_DRAIN, {"after": after})
        result = cursor.pgresult
        for n in range(result.ntuples):
            name, images, ids, steps, deleted = (result.get_value(n, c) for c in range(5))
            capture.add_json(name.decode(), images, _ints(ids), _ints(steps), _ints(deleted))
    finally:
        cursor.close()
    conn.info[DRAINED] = last


def _ints(listed: bytes | None) -> list[int]:
    return list(map(int, listed.split(b","))) if listed else []
