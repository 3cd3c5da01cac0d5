"""What the pages show, read into plain dicts inside one transaction."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kundo_gdpr.models import Event, Organization, OutboundMail, Request, RequestSubject, utcnow
from kundo_gdpr.models.queue import OPEN_STATES, REQUEST_STATES

__all__ = ["DUE_FILTERS", "REQUEST_STATES", "detail", "queue"]


DUE_FILTERS = ("overdue", "week")


def queue(
    session: Session, state: str, search: str, page: int, size: int, due: str = ""
) -> tuple[list[dict[str, Any]], int]:
    now = utcnow()
    stmt = select(Request, Organization.name).outerjoin(
        Organization, Organization.id == Request.organization_id
    )
    if state in REQUEST_STATES:
        stmt = stmt.where(Request.state == state)
    if due in DUE_FILTERS:
        # Only open requests can be late; done and rejected ones are finished.
        limit = now if due == "overdue" else now + dt.timedelta(days=7)
        stmt = stmt.where(Request.state.in_(OPEN_STATES), Request.due_at < limit)
    if search:
        like = f"%{search.lower()}%"
        subjects = select(RequestSubject.request_id).where(
            func.lower(RequestSubject.email).like(like)
        )
        stmt = stmt.where(or_(
            func.lower(Request.reference).like(like),
            func.lower(Request.sender).like(like),
            Request.id.in_(subjects),
        ))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    stmt = stmt.order_by(Request.due_at, Request.id).offset((page - 1) * size).limit(size)
    return [_row(r, org, now) for r, org in session.execute(stmt)], total


def _row(r: Request, controller: str | None, now: dt.datetime) -> dict[str, Any]:
    return {
        "reference": r.reference,
        "controller": controller or "",
        "sender": r.sender or "",
        "kinds": list(r.kinds),
        "channels": list(r.channel_kinds),
        "state": r.state,
        "received": r.received_at,
        "due": r.due_at,
        "days_left": (r.due_at - now).days,
    }


def detail(session: Session, reference: str) -> dict[str, Any] | None:
    r = session.scalar(select(Request).where(Request.reference == reference))
    if r is None:
        return None
    org = session.get(Organization, r.organization_id) if r.organization_id else None
    events = session.scalars(select(Event).where(Event.request_id == r.id).order_by(Event.id))
    replies = session.scalars(
        select(OutboundMail).where(OutboundMail.request_id == r.id).order_by(OutboundMail.id)
    )
    return {
        **_row(r, org.name if org else None, utcnow()),
        "subject_line": r.subject_line,
        "sender_name": r.sender_name or "",
        "subjects": [s.email for s in r.subjects],
        "language": r.language,
        "assertion": r.assertion,
        "findings": list(r.findings),
        "mail": mail_view(r.inbound_mail.raw),
        "events": [{"at": e.at, "actor": e.actor, "action": e.action, "detail": e.detail}
                   for e in events],
        "replies": [{"purpose": m.purpose, "to": m.to_addr, "state": m.state,
                     "attempts": m.attempts, "error": m.last_error, "sent_at": m.sent_at}
                    for m in replies],
    }


def mail_view(raw: bytes) -> dict[str, Any]:
    """The original mail as text for display: headers, the body, attachment names.

    An HTML-only body is shown as its source; the page escapes it, and never
    renders mail HTML.
    """
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    headers = [(k, str(msg.get(k, ""))) for k in ("From", "To", "Date", "Subject")]
    body = msg.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        try:
            text = str(body.get_content())
        except (LookupError, ValueError):
            text = body.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]
    attachments = [a.get_filename() or "(unnamed)" for a in msg.iter_attachments()]
    return {"headers": headers, "text": text, "attachments": attachments}
