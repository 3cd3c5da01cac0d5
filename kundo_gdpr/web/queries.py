"""What the pages show, read into plain dicts inside one transaction."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import statistics
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.desk.protocol import Mention
from kundo_gdpr.models import (
    ChatMessage,
    Export,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
    OutboundMail,
    Request,
    RequestSubject,
    utcnow,
)
from kundo_gdpr.models.queue import DONE, OPEN_STATES, REQUEST_STATES
from kundo_gdpr.stages import decide, undo
from kundo_gdpr.stages.unit import reason_of

__all__ = ["DUE_FILTERS", "REQUEST_STATES", "SORTS", "VIEWS", "QueueQuery", "detail", "overview",
           "queue"]


DUE_FILTERS = ("overdue", "week")
# Saved views of the queue; "open" is the default.
VIEWS = ("open", "mine", "due", "overdue", "all")
SOON = dt.timedelta(days=7)
WEEKS = 12


@dataclass(frozen=True)
class QueueQuery:
    view: str = "open"
    state: str = ""
    search: str = ""
    due: str = ""
    sort: str = "due"
    descending: bool = False
    agent: str = ""


def _sort_columns() -> dict[str, Any]:
    return {"due": decide.due_column(), "received": Request.received_at,
            "reference": Request.reference, "state": Request.state,
            "controller": Organization.name, "sender": Request.sender,
            "assignee": Request.assignee}


SORTS = ("reference", "controller", "sender", "state", "assignee", "received", "due")


def queue(
    session: Session, query: QueueQuery, page: int, size: int
) -> tuple[list[dict[str, Any]], int]:
    now = utcnow()
    due_at = decide.due_column()
    stmt = select(Request, Organization.name).outerjoin(
        Organization, Organization.id == Request.organization_id
    ).options(selectinload(Request.subjects))
    if query.state in REQUEST_STATES:
        stmt = stmt.where(Request.state == query.state)
    view = query.view
    if view in ("open", "mine", "due", "overdue"):
        # Done, rejected and closed requests leave the working views; "all" has them.
        stmt = stmt.where(Request.state.in_(OPEN_STATES))
    if view == "mine":
        stmt = stmt.where(Request.assignee == query.agent)
    if view == "due" or query.due == "week":
        stmt = stmt.where(Request.state.in_(OPEN_STATES), due_at < now + SOON)
    if view == "overdue" or query.due == "overdue":
        stmt = stmt.where(Request.state.in_(OPEN_STATES), due_at < now)
    if query.search:
        like = f"%{query.search.lower()}%"
        subjects = select(RequestSubject.request_id).where(
            func.lower(RequestSubject.email).like(like)
        )
        stmt = stmt.where(or_(
            func.lower(Request.reference).like(like),
            func.lower(Request.sender).like(like),
            Request.id.in_(subjects),
        ))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    column = _sort_columns().get(query.sort, due_at)
    order = column.desc() if query.descending else column.asc()
    stmt = stmt.order_by(order, Request.id).offset((page - 1) * size).limit(size)
    return [_row(r, org, now) for r, org in session.execute(stmt)], total


def _row(r: Request, controller: str | None, now: dt.datetime) -> dict[str, Any]:
    due = decide.due_date(r)
    return {
        "reference": r.reference,
        "controller": controller or "",
        "sender": r.sender or "",
        "kinds": list(r.kinds),
        "channels": list(r.channel_kinds),
        "state": r.state,
        "subjects": [s.shown for s in r.subjects],
        "assignee": r.assignee or "",
        "open": r.state in OPEN_STATES,
        "received": r.received_at,
        "due": due,
        "extended": r.deadline_extended_until is not None,
        # Floor division: due yesterday at this hour is -1, not 0.
        "days_left": (due - now).days,
        "badge": _badge(r.state in OPEN_STATES, due, now),
        # Why a stage gave the request up ("check: ValueError: ..."), if it did.
        "stopped": reason_of(r),
    }


def _badge(open_: bool, due: dt.datetime, now: dt.datetime) -> str:
    """The deadline's colour: overdue (red), due within 7 days (amber), or none."""
    if not open_:
        return ""
    if due < now:
        return "overdue"
    return "soon" if due - now <= SOON else ""


def detail(session: Session, config: Config, reference: str) -> dict[str, Any] | None:
    r = session.scalar(select(Request).where(Request.reference == reference))
    if r is None:
        return None
    org = session.get(Organization, r.organization_id) if r.organization_id else None
    events = audit.trail(session, r)
    replies = session.scalars(
        select(OutboundMail).where(OutboundMail.request_id == r.id).order_by(OutboundMail.id)
    )
    exports = session.scalars(select(Export).where(Export.request_id == r.id).order_by(Export.id))
    now = utcnow()
    return {
        **_row(r, org.name if org else None, now),
        "original_due": r.due_at,
        "extension_reason": r.deadline_extension_reason,
        "subject_line": r.subject_line,
        "sender_name": r.sender_name or "",
        "language": r.language,
        "assertion": r.assertion,
        "findings": [_finding(f) for f in r.findings],
        "result": r.result or {},
        "preview": _preview(session, config, r) if r.state in OPEN_STATES else {},
        "undo": undo.view(session, r),
        "mail": mail_view(r.inbound_mail.raw) if r.minimised_at is None else None,
        "minimised": _minimised(r, config),
        "events": [{"at": e.at, "actor": e.actor, "action": e.action,
                    "detail": audit.shown(r, e.detail)}
                   for e in events],
        "replies": [{"id": m.id, "purpose": m.purpose, "to": m.to_addr, "state": m.state,
                     "attempts": m.attempts, "error": m.last_error, "sent_at": m.sent_at,
                     "message_id": m.message_id,
                     "resendable": m.state in decide.RESENDABLE and r.minimised_at is None}
                    for m in replies],
        "exports": [{"id": x.id, "filename": x.filename, "subject": x.subject, "size": x.size,
                     "expires": x.expires_at,
                     "kept": x.kept(now)}
                    for x in exports],
    }


def _minimised(r: Request, config: Config) -> dict[str, Any] | None:
    """When and what minimising left of the mail (records.retention), if it ran."""
    if r.minimised_at is None:
        return None
    return {"at": r.minimised_at, "days": config.retention.request_days,
            "size": r.inbound_mail.size, "sha256": r.inbound_mail.sha256}


def _preview(session: Session, config: Config, r: Request) -> dict[str, Any]:
    found = decide.preview(session, config, r)
    for entry in found.values():
        if "names" in entry:
            entry["names"] = [_named_item(session, m) for m in entry["names"]]
    return found


# The reference desk's tables that mentions come from: model, date column, text columns.
_NAMED: dict[str, tuple[Any, str, tuple[str, ...]]] = {
    "forum_posts": (ForumPost, "created_at", ("title", "body")),
    "mail_conversations": (MailConversation, "created_at", ("subject",)),
    "mail_messages": (MailMessage, "created_at", ("body",)),
    "chat_messages": (ChatMessage, "sent_at", ("body",)),
}
EXCERPT = 140


def _named_item(session: Session, mention: Mention) -> dict[str, Any]:
    """A text by someone else that names the subject: its channel, date and an excerpt."""
    model, date_column, texts = _NAMED.get(mention.item, (None, "", ()))
    row = session.get(model, mention.id) if model is not None else None
    text = " ".join(" ".join(str(getattr(row, c) or "") for c in texts).split()) if row else ""
    return {"channel": mention.kind, "id": mention.id,
            "date": getattr(row, date_column, None) if row else None,
            "excerpt": text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")}


def _finding(f: dict[str, Any]) -> dict[str, Any]:
    """A finding with its arguments as text (lists as lists of text), ready
    for the plain-words strings."""
    args = {k: [str(x) for x in v] if isinstance(v, list) else str(v)
            for k, v in (f.get("args") or {}).items()}
    return {"code": f["code"], "severity": f["severity"], "args": args}


def mail_view(raw: bytes) -> dict[str, Any]:
    """The original mail as text for display: headers, the body, attachment names.

    An HTML-only body is shown as its source; the page escapes it, and never
    renders mail HTML. Attachments are named, never opened.
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
    attachments = [{"name": a.get_filename() or "", "type": a.get_content_type(),
                    "size": len(a.get_payload(decode=True) or b"")}
                   for a in msg.iter_attachments()]
    return {"headers": headers, "text": text, "attachments": attachments}


# -- overview -------------------------------------------------------------------------


def overview(session: Session) -> dict[str, Any]:
    """Counts per state, overdue, and per week for the last 12 weeks: requests
    received and the median days from received to done."""
    now = utcnow()
    counts: dict[str, int] = {
        state: n for state, n in session.execute(
            select(Request.state, func.count()).group_by(Request.state))
    }
    overdue = session.scalar(select(func.count()).select_from(Request).where(
        Request.state.in_(OPEN_STATES), decide.due_column() < now)) or 0
    starts = week_starts(now, WEEKS)
    first = starts[0]
    received = session.scalars(select(Request.received_at).where(Request.received_at >= first))
    done = session.execute(select(Request.received_at, Request.done_at).where(
        Request.state == DONE, Request.done_at >= first))
    per_week = {s: 0 for s in starts}
    for at in received:
        per_week[_week_of(at)] = per_week.get(_week_of(at), 0) + 1
    durations: dict[dt.datetime, list[float]] = {s: [] for s in starts}
    for got, finished in done:
        assert finished is not None
        durations.setdefault(_week_of(finished), []).append(
            (finished - got).total_seconds() / 86400)
    weeks = [{"start": s, "received": per_week[s],
              "median_days": statistics.median(durations[s]) if durations[s] else None}
             for s in starts]
    return {"counts": {s: counts.get(s, 0) for s in REQUEST_STATES}, "overdue": overdue,
            "total": sum(counts.values()), "weeks": weeks}


def week_starts(now: dt.datetime, weeks: int) -> list[dt.datetime]:
    """Mondays 00:00 UTC of the last `weeks` weeks, oldest first, this week last."""
    this = _week_of(now)
    return [this - dt.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def _week_of(at: dt.datetime) -> dt.datetime:
    day = at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - dt.timedelta(days=day.weekday())
