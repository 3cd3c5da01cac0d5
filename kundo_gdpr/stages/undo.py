"""Stage undo: an admin undoes an erase within its safety window; the sweep closes
windows that are due.

`undo` puts back what the request's erase took (actions/vault/), marks the
request `undone` and tells the editor, in one transaction. `close_due` is the
sweep: a window past its end loses its key and before images, and the erase
is final.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, db
from kundo_gdpr.actions import vault
from kundo_gdpr.actions.vault import UndoRefused
from kundo_gdpr.config import Config
from kundo_gdpr.models import Request, utcnow
from kundo_gdpr.models.queue import DONE, UNDONE
from kundo_gdpr.records import ledger
from kundo_gdpr.replies.context import reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.vocabulary import Kind

__all__ = ["UndoRefused", "close_due", "explain", "refused", "undo", "view"]


def undo(
    session: Session, config: Config, request: Request, actor: str, reason: str,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Restore the request's erase; the rows restored per table.

    Raises `UndoRefused` having changed nothing when the request was not
    erased, the window has closed, or later changes overlap; the caller
    records that with `refused` (the same transaction may commit it).
    """
    now = now or utcnow()
    if request.state != DONE or Kind.ERASE not in request.kinds:
        raise UndoRefused("not_erased", state=request.state)
    window = vault.window_of(session, request.id)
    if window is None:
        raise UndoRefused("no_window")
    if window.undone_at is not None:
        raise UndoRefused("already_undone", undone_at=window.undone_at)
    restored = vault.restore(session, window, now)
    request.state = UNDONE
    ledger.record_undo(config, request)  # so a replay after a restore does not erase it again
    audit.record(session, "undone", actor=actor, request=request, reason=reason,
                 restored=restored)
    if request.sender:
        context = reply_context(session, request, reason=reason, restored=restored)
        queue_reply(session, config, request, "undone", context)
    return restored


def view(session: Session, request: Request) -> dict[str, Any] | None:
    """The request's safety window for the request page; None: it never had one."""
    window = vault.window_of(session, request.id)
    if window is None:
        return None
    is_open = window.key is not None and request.state == DONE and utcnow() < window.closes_at
    return {"open": is_open, "until": window.closes_at, "undone_at": window.undone_at}


def refused(session: Session, request: Request, actor: str, exc: UndoRefused) -> None:
    audit.record(session, "undo_refused", actor=actor, request=request, reason=exc.reason,
                 **_plain(exc.detail))


def explain(exc: UndoRefused) -> str:
    """The refusal in a line, for the command line and the request page."""
    detail = exc.detail
    if exc.reason == "window_closed":
        closed = detail["closed_at"].strftime("%Y-%m-%d %H:%M")
        return f"the undo window closed at {closed} UTC; the erasure is final"
    if exc.reason == "overlap":
        return ("later changes touch the same rows, so nothing was restored: "
                + ", ".join(detail["rows"][:20]))
    if exc.reason == "already_undone":
        return "the erasure has already been undone"
    if exc.reason == "no_window":
        return "this erasure was final at once ([erase] undo_hours = 0 when it ran)"
    return f"only a done erasure can be undone (the request is {detail.get('state')})"


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in detail.items()}


def close_due(factory: sessionmaker[Session], now: dt.datetime | None = None) -> int:
    """Close every window past its end: key and before images deleted. How many closed."""
    now = now or utcnow()
    closed = 0
    with factory.begin() as session:
        for window in vault.due(session, now):
            vault.shred(session, window)
            window.closed_at = now
            request = session.get(Request, window.request_id) if window.request_id else None
            audit.record(session, "undo_window_closed", request=request,
                         retention_run_id=window.retention_run_id,
                         closes_at=window.closes_at.isoformat())
            closed += 1
    if closed:
        # The deleted keys and batches out of the WAL (SQLite) and dead tuples (PostgreSQL).
        db.purge(factory.kw["bind"], ["vault_batches", "undo_windows"])
    return closed
