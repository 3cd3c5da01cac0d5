"""The outbox: replies are rows written with the state change that caused them,
and a sender loop delivers them with retry and backoff.

At most `service.max_replies_per_sender_per_hour` replies go to one address
per hour (sent in the last hour, or queued to go now). A reply over the limit
is held, never dropped: `release_due` queues it once the hour allows, or an
agent releases it at once with `release`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.models import OutboundMail, Request, utcnow
from kundo_gdpr.models.queue import HELD, QUEUED, SEND_FAILED, SENT
from kundo_gdpr.replies.render import Envelope, FileAttachment, make_message, new_message_id
from kundo_gdpr.replies.stored import refilled, without_attachments
from kundo_gdpr.replies.transports import Transport, TransportError

# Set on every reply we send, so a reply fed back into our inbox is known as ours.
OWN_HEADER = "X-Kundo-GDPR-Reply"


def queue_reply(
    session: Session,
    config: Config,
    request: Request,
    purpose: str,
    context: dict[str, Any],
    attachments: Sequence[FileAttachment] = (),
) -> OutboundMail:
    """Render a reply to the request's sender and add it to the outbox.

    The recipient is always the request's sender as checked (the editor's
    stored address once known); never Reply-To or an address from the body.
    """
    to_addr = request.sender
    if not to_addr:
        raise ValueError(f"request {request.reference} has no sender to reply to")
    message_id = new_message_id(f"{request.reference}.{purpose}", config.service.message_id_domain)
    envelope = Envelope(
        from_addr=config.service.support_addresses[0],
        from_name=config.service.from_name,
        to_addr=to_addr,
        message_id=message_id,
        in_reply_to=request.message_id,
        references=tuple((request.references or "").split()),
    )
    msg = make_message(purpose, request.language, envelope, context, attachments)
    # Marks the mail as ours even where a relay strips Auto-Submitted.
    msg[OWN_HEADER] = request.reference or "reply"
    held = over_limit(session, config, to_addr)
    row = OutboundMail(
        request_id=request.id,
        purpose=purpose,
        message_id=message_id,
        to_addr=to_addr,
        subject=str(msg["Subject"]),
        raw=msg.as_bytes(),
        state=HELD if held else QUEUED,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    audit.record(
        session,
        "reply_held" if held else "reply_queued",
        request=request,
        purpose=purpose,
        to=to_addr,
        message_id=message_id,
    )
    return row


def over_limit(session: Session, config: Config, to_addr: str) -> bool:
    """Whether `to_addr` already has its hour's worth of replies, sent or on their way."""
    limit = config.service.max_replies_per_sender_per_hour
    if not limit:
        return False
    hour_ago = utcnow() - dt.timedelta(hours=1)
    recent = session.scalar(
        select(func.count())
        .select_from(OutboundMail)
        .where(
            OutboundMail.to_addr == to_addr,
            or_(
                OutboundMail.state == QUEUED,
                (OutboundMail.state == SENT) & (OutboundMail.sent_at >= hour_ago),
            ),
        )
    )
    return (recent or 0) >= limit


def release_due(factory: sessionmaker[Session], config: Config) -> int:
    """Queue held replies, oldest first, as far as each address's hour allows."""
    released = 0
    with factory.begin() as session:
        held = session.scalars(
            select(OutboundMail)
            .where(OutboundMail.state == HELD)
            .order_by(OutboundMail.id)
            .with_for_update(skip_locked=True)
        ).all()
        for row in held:
            if over_limit(session, config, row.to_addr):
                continue
            _requeue(session, row, audit.SYSTEM)
            session.flush()  # the next address check counts this one
            released += 1
    return released


def release(session: Session, row: OutboundMail, actor: str) -> None:
    """An agent sends a held reply now, or retries a failed one."""
    if row.state not in (HELD, SEND_FAILED):
        raise ValueError(f"reply {row.id} is {row.state}, not {HELD} or {SEND_FAILED}")
    if row.sha256 is not None:  # minimised (records.retention): nothing left to send
        raise ValueError(f"reply {row.id} belongs to a minimised request; its text is gone")
    row.attempts = 0
    _requeue(session, row, actor)


def _requeue(session: Session, row: OutboundMail, actor: str) -> None:
    previous, row.state, row.next_attempt_at = row.state, QUEUED, utcnow()
    audit.record(
        session,
        "reply_released",
        actor=actor,
        request=_request(session, row),
        message_id=row.message_id,
        was=previous,
    )


def due() -> Select[OutboundMail]:
    """Queued replies whose next attempt is due, in the order they go out."""
    return (select(OutboundMail)
            .where(OutboundMail.state == QUEUED, OutboundMail.next_attempt_at <= utcnow())
            .order_by(OutboundMail.next_attempt_at, OutboundMail.id))


def deliver_one(factory: sessionmaker[Session], config: Config, transport: Transport) -> bool:
    """Send the next due reply. Returns whether there was one."""
    with factory.begin() as session:
        row = claim(session, due())
        if row is None:
            return False
        _attempt(session, config, transport, row)
        return True


def deliver(
    factory: sessionmaker[Session], config: Config, transport: Transport, reply_id: int
) -> None:
    """Send this reply if it is still due (another worker may have sent it)."""
    with factory.begin() as session:
        row = claim(session, due().where(OutboundMail.id == reply_id))
        if row is not None:
            _attempt(session, config, transport, row)


def _attempt(session: Session, config: Config, transport: Transport, row: OutboundMail) -> None:
    row.attempts += 1
    try:
        transport.send(config.service.support_addresses[0], row.to_addr,
                       refilled(session, row), row.message_id)
    except TransportError as exc:
        row.last_error = str(exc)
        if exc.permanent or row.attempts >= config.outbox.max_attempts:
            row.state = SEND_FAILED
            audit.record(
                session,
                "reply_failed",
                request=_request(session, row),
                message_id=row.message_id,
                error=str(exc),
            )
        else:
            row.next_attempt_at = utcnow() + _backoff(config, row.attempts)
            # Each failed attempt is in the trail, not only the last one.
            audit.record(
                session,
                "reply_retry",
                request=_request(session, row),
                message_id=row.message_id,
                attempt=row.attempts,
                error=str(exc),
                next_attempt_at=row.next_attempt_at.isoformat(),
            )
        return
    row.state = SENT
    row.sent_at = utcnow()
    row.raw = without_attachments(row.raw)  # no stored copy of an export (replies/stored.py)
    audit.record(
        session,
        "reply_sent",
        request=_request(session, row),
        message_id=row.message_id,
        to=row.to_addr,
    )


def _backoff(config: Config, attempts: int) -> dt.timedelta:
    seconds = config.outbox.retry_base_seconds * 2 ** (attempts - 1)
    return dt.timedelta(seconds=min(seconds, 6 * 3600))


def _request(session: Session, row: OutboundMail) -> Request | None:
    return session.get(Request, row.request_id) if row.request_id else None
