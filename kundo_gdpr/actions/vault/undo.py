"""Undo within the window, and its end: every row put back exactly, or nothing;
the key and the sealed batches deleted when the window closes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Table, bindparam, column, insert, select, table, update
from sqlalchemy.orm import Session

from kundo_gdpr.actions.vault.base import DESK_TABLES, Image, Key
from kundo_gdpr.actions.vault.seal import aad, unseal
from kundo_gdpr.models import Base, UndoWindow, VaultBatch


class UndoRefused(Exception):
    """Undo is not possible; `reason` is a stable code, `detail` its arguments."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


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
        for image in unseal(window.key, aad(window, batch.seq), batch.nonce, batch.sealed):
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
