"""Two stages: store (mailbox -> inbound_mail) and parse (inbound_mail -> request)."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, auth
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.intake.parse import ParseError, parse
from kundo_gdpr.intake.result import ParsedMail
from kundo_gdpr.intake.source import FetchedMail, MailSource
from kundo_gdpr.models import InboundMail, Request, RequestSubject, utcnow
from kundo_gdpr.models.queue import (
    MAIL_DUPLICATE,
    MAIL_PARSED,
    MAIL_STORED,
    PARSED,
    QUARANTINED,
)

log = logging.getLogger(__name__)

# The database is down or locked: retry later, never blame the message.
DB_UNAVAILABLE = (OperationalError, InterfaceError)


def fetch(
    factory: sessionmaker[Session],
    source: MailSource,
    max_bytes: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Store every pending message, then mark it done in the source.

    Storing comes first: a crash before `done` yields the message again and
    the unique raw-bytes hash and source key make the second store a no-op.
    A message that cannot be stored (over `max_bytes`, or storing it fails
    for a reason of its own) is recorded and moved to quarantine, so one bad
    mail never blocks the ones behind it. A database that cannot be reached
    is not the mail's fault: that error propagates and the mail stays put.
    `should_stop` is asked between messages (SIGTERM).
    """
    stored = 0
    for fetched in source.pending():
        if should_stop():
            break
        reason = _too_large(fetched, max_bytes)
        if reason is None:
            try:
                stored += _store_once(factory, source.name, fetched)
            except DB_UNAVAILABLE:
                raise
            except Exception as exc:  # the one broad catch of this loop: quarantine, go on
                log.exception("mail %s from %s could not be stored", fetched.key, source.name)
                reason = f"cannot be stored: {type(exc).__name__}: {exc}"[:2000]
        if reason is None:
            source.done(fetched.key)
        else:
            quarantine(factory, source, fetched, reason)
    return stored


def _too_large(fetched: FetchedMail, max_bytes: int) -> str | None:
    if max_bytes and len(fetched.raw) > max_bytes:
        return f"too large: {len(fetched.raw)} bytes, the limit is {max_bytes}"
    return None


def _store_once(factory: sessionmaker[Session], source_name: str, fetched: FetchedMail) -> int:
    # IntegrityError: another worker stored it between our check and insert.
    with contextlib.suppress(IntegrityError):
        return store(factory, source_name, fetched)
    return 0


def quarantine(
    factory: sessionmaker[Session], source: MailSource, fetched: FetchedMail, reason: str
) -> None:
    """Record why a message was not stored, then move it aside in the source.

    Recorded first: a crash before the move fetches it again and records it
    again, which is noisy but loses nothing.
    """
    log.warning("quarantining %s from %s: %s", fetched.key, source.name, reason)
    with factory.begin() as session:
        audit.record(
            session,
            "mail_quarantined",
            source=source.name,
            key=fetched.key,
            size=len(fetched.raw),
            sha256=hashlib.sha256(fetched.raw).hexdigest(),
            reason=reason,
        )
    source.quarantine(fetched.key, reason)


def store(factory: sessionmaker[Session], source_name: str, fetched: FetchedMail) -> int:
    """Keep the raw bytes of one message (once). Returns 1 if it was new."""
    digest = hashlib.sha256(fetched.raw).hexdigest()
    with factory.begin() as session:
        seen = session.scalar(
            select(InboundMail.id).where(
                or_(
                    InboundMail.sha256 == digest,
                    (InboundMail.source == source_name) & (InboundMail.source_key == fetched.key),
                )
            )
        )
        if seen is not None:
            return 0
        mail = InboundMail(
            source=source_name,
            source_key=fetched.key,
            sha256=digest,
            message_id=_message_id(fetched.raw),
            raw=fetched.raw,
            size=len(fetched.raw),
            state=MAIL_STORED,
            received_at=utcnow(),
        )
        session.add(mail)
        session.flush()
        audit.record(session, "mail_stored", mail=mail, source=source_name, size=mail.size)
    return 1


def _message_id(raw: bytes) -> str | None:
    try:
        parsed = parse(raw)
    except ParseError:
        return None
    if not parsed.message_id:
        return None
    # PostgreSQL text cannot hold NUL; a mangled header must not block storing.
    return parsed.message_id.replace("\x00", "")[:998] or None


def parse_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Turn the next stored mail into a request. Returns whether there was one."""
    with factory.begin() as session:
        mail = claim(
            session,
            select(InboundMail).where(InboundMail.state == MAIL_STORED).order_by(InboundMail.id),
        )
        if mail is None:
            return False
        try:
            parsed = parse(mail.raw, config.service.support_addresses)
        except ParseError as exc:
            _quarantine_unparseable(session, mail, str(exc))
            return True
        if _is_duplicate(session, config, mail, parsed):
            mail.state = MAIL_DUPLICATE
            audit.record(session, "mail_duplicate", mail=mail, message_id=parsed.message_id)
            return True
        request = new_request(session, mail, parsed)
        audit.record(session, "parsed", request=request, **parsed.contract())
    return True


def _is_duplicate(session: Session, config: Config, mail: InboundMail, parsed: ParsedMail) -> bool:
    """The same request resent (same Message-ID from the same authenticated sender).

    A Message-ID alone proves nothing: anyone can reuse one, and so can anyone
    type a From header. It counts only when both mails provably come from the
    same sender, so a forgery arriving first cannot get the genuine mail skipped.
    With `auth.require` off the From header is trusted, as everywhere else.
    """
    if not parsed.message_id or not parsed.sender:
        return False
    query = (
        select(Request.id)
        .join(InboundMail, InboundMail.id == Request.inbound_mail_id)
        .where(
            InboundMail.message_id == parsed.message_id,
            InboundMail.id != mail.id,
            Request.sender == parsed.sender,
        )
    )
    if config.auth.require:
        query = query.where(Request.authenticated.is_(True))
    earlier = session.scalar(query)
    if earlier is None:
        return False
    if not config.auth.require:
        return True
    domain = parsed.sender.rpartition("@")[2]
    return auth.authenticate(mail.raw, domain, config).authenticated


def new_request(session: Session, mail: InboundMail, parsed: ParsedMail) -> Request:
    received = mail.received_at
    request = Request(
        inbound_mail_id=mail.id,
        sender=parsed.sender,
        sender_name=parsed.sender_name,
        subject_line=parsed.subject_line[:2000],
        message_id=parsed.message_id,
        references=" ".join(parsed.references) or None,
        kinds=list(parsed.kinds),
        channel_kinds=list(parsed.channels),
        language=parsed.language,
        assertion=parsed.assertion,
        problems=list(parsed.problems),
        state=PARSED,
        received_at=received,
        due_at=add_months(received, 1),
        subjects=[RequestSubject(email=s) for s in parsed.subjects],
    )
    session.add(request)
    session.flush()
    request.reference = make_reference(received, request.id)
    mail.state = MAIL_PARSED
    return request


def _quarantine_unparseable(session: Session, mail: InboundMail, reason: str) -> None:
    mail.state = MAIL_PARSED
    mail.error = reason
    request = Request(
        inbound_mail_id=mail.id,
        state=QUARANTINED,
        problems=["unparseable"],
        received_at=mail.received_at,
        due_at=add_months(mail.received_at, 1),
    )
    session.add(request)
    session.flush()
    request.reference = make_reference(mail.received_at, request.id)
    audit.record(session, "quarantined", request=request, reason=reason)
    log.warning("mail %s could not be parsed: %s", mail.id, reason)


def make_reference(received: dt.datetime, request_id: int) -> str:
    return f"GDPR-{received.year}-{request_id:05d}"


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """GDPR Art. 12(3): a calendar month later, clamped to the month's last day."""
    month_index = when.month - 1 + months
    year, month = when.year + month_index // 12, month_index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)
