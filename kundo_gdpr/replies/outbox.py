"""The outbox: replies are rows written with the state change that caused them,
and a sender loop delivers them with retry and backoff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.models import OutboundMail, Request, utcnow
from kundo_gdpr.models.queue import QUEUED, SEND_FAILED, SENT
from kundo_gdpr.replies.render import Envelope, FileAttachment, make_message, new_message_id
from kundo_gdpr.replies.transports import Transport, TransportError


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
    row = OutboundMail(
        request_id=request.id,
        purpose=purpose,
        message_id=message_id,
        to_addr=to_addr,
        subject=str(msg["Subject"]),
        raw=msg.as_bytes(),
        state=QUEUED,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    audit.record(
        session, "reply_queued", request=request, purpose=purpose, to=to_addr, message_id=message_id
    )
    return row


def deliver_one(factory: sessionmaker[Session], config: Config, transport: Transport) -> bool:
    """Send the next due reply. Returns whether there was one."""
    with factory.begin() as session:
        row = claim(
            session,
            select(OutboundMail)
            .where(OutboundMail.state == QUEUED, OutboundMail.next_attempt_at <= utcnow())
            .order_by(OutboundMail.next_attempt_at, OutboundMail.id),
        )
        if row is None:
            return False
        _attempt(session, config, transport, row)
        return True


def _attempt(session: Session, config: Config, transport: Transport, row: OutboundMail) -> None:
    row.attempts += 1
    try:
        transport.send(config.service.support_addresses[0], row.to_addr, row.raw, row.message_id)
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
        return
    row.state = SENT
    row.sent_at = utcnow()
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
