"""The append-only audit trail.

Events are only ever inserted. Two guards hold that: every ORM session
refuses to flush a changed or deleted Event (`AppendOnlyError`), and the
database refuses UPDATE and DELETE on `events` with a trigger (migration
0005, SQLite and PostgreSQL alike), which also stops raw SQL and other
programs. The ORM guard gives a clear error at the line that tried; the
trigger is what an auditor can rely on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Delete, Update, event, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from kundo_gdpr.identity import key
from kundo_gdpr.models import Event, InboundMail, Request, utcnow
from kundo_gdpr.records import redact

SYSTEM = "system"


class AppendOnlyError(Exception):
    """Something tried to change or delete an audit event."""


def record(
    session: Session,
    action: str,
    *,
    actor: str = SYSTEM,
    request: Request | None = None,
    mail: InboundMail | None = None,
    **detail: Any,
) -> Event:
    """Add one event to the session; it commits with the change it describes.

    A subject of the request is written as its request_subjects row
    ("subject#12"), never in clear, and findings without the mail's words
    (kundo_gdpr.records.redact): the request row holds those until minimised.
    """
    detail = redact.without_words(detail)
    if request is not None:
        detail = redact.redact(detail, subject_tokens(session, request))
    event = Event(
        request_id=request.id if request else None,
        inbound_mail_id=mail.id if mail else (request.inbound_mail_id if request else None),
        at=utcnow(),
        actor=actor,
        action=action,
        detail=detail,
    )
    session.add(event)
    return event


def subject_tokens(session: Session, request: Request) -> dict[str, str]:
    """Normalised address -> "subject#<row id>" for the request's subjects."""
    subjects = list(request.subjects)
    if any(s.id is None for s in subjects):
        session.flush()
    return {k: redact.token(s.id) for s in subjects if (k := key(s.email))}


def shown(request: Request, detail: dict[str, Any]) -> Any:
    """An event's detail as agents see it: subjects by their address while the
    request still holds it, by the masked form once it is minimised."""
    return redact.reveal(detail, {redact.token(s.id): s.shown for s in request.subjects})


def trail(session: Session, request: Request) -> list[Event]:
    """The request's events and its mail's own (stored before the request existed), in order."""
    mine = or_(Event.request_id == request.id, Event.inbound_mail_id == request.inbound_mail_id)
    return list(session.scalars(select(Event).where(mine).order_by(Event.id)))


@event.listens_for(Session, "before_flush")
def _no_changed_events(session: Session, flush: UOWTransaction, instances: object) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, Event) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError(f"audit event {obj.id} cannot be changed or deleted")


@event.listens_for(Session, "do_orm_execute")
def _no_bulk_event_changes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    statement = state.statement
    table = getattr(statement, "table", None) if isinstance(statement, Update | Delete) else None
    if getattr(table, "name", None) == Event.__tablename__:
        raise AppendOnlyError("audit events cannot be updated or deleted")
