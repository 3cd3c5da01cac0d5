"""Stage parse: `inbound_mail` (`stored`) -> `requests` (`parsed`).

Reads an `inbound_mail` row in state `stored`; writes it `parsed` (or
`duplicate`) and a new request in state `parsed` with its `parsed` audit
event, or in state `quarantined` when the mail cannot be parsed at all.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, auth
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.intake.parse import ParseError, parse
from kundo_gdpr.intake.result import ParsedMail
from kundo_gdpr.models import InboundMail, Request, RequestSubject
from kundo_gdpr.models.queue import (
    MAIL_DUPLICATE,
    MAIL_PARSED,
    MAIL_STORED,
    PARSED,
    QUARANTINED,
)
from kundo_gdpr.stages.unit import Owner, Stage, mark_stopped

log = logging.getLogger(__name__)


def parse_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Turn the next stored mail into a request. Returns whether there was one."""
    with factory.begin() as session:
        mail = claim(session, _stored())
        if mail is None:
            return False
        parse_mail(session, config, mail)
    return True


def _stored() -> Select[InboundMail]:
    return select(InboundMail).where(InboundMail.state == MAIL_STORED).order_by(InboundMail.id)


def claim_next(session: Session) -> int | None:
    mail = claim(session, _stored())
    return mail.id if mail else None


def handle(factory: sessionmaker[Session], config: Config, mail_id: int) -> None:
    with factory.begin() as session:
        mail = claim(session, _stored().where(InboundMail.id == mail_id))
        if mail is not None:  # else another worker has parsed it
            parse_mail(session, config, mail)


def owner(session: Session, mail_id: int) -> Owner:
    return None, session.get(InboundMail, mail_id)


def give_up(session: Session, config: Config, mail_id: int, reason: str) -> None:
    """The mail could not be parsed after every attempt: a quarantined request says why."""
    mail = claim(session, _stored().where(InboundMail.id == mail_id))
    if mail is not None:
        request = _quarantine_unparseable(session, mail, reason)
        # Why, where agents look, as for every other stage that gives up.
        mark_stopped(session, request, QUARANTINED, "parse", reason)


STAGE = Stage("parse", claim_next, handle, owner, give_up)


def parse_mail(session: Session, config: Config, mail: InboundMail) -> None:
    try:
        parsed = parse(mail.raw, config.service.support_addresses)
    except ParseError as exc:
        _quarantine_unparseable(session, mail, str(exc))
        return
    if _is_duplicate(session, config, mail, parsed):
        mail.state = MAIL_DUPLICATE
        audit.record(session, "mail_duplicate", mail=mail, message_id=parsed.message_id)
        return
    request = new_request(session, mail, parsed)
    audit.record(session, "parsed", request=request, **parsed.contract())


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


def _quarantine_unparseable(session: Session, mail: InboundMail, reason: str) -> Request:
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
    return request


def make_reference(received: dt.datetime, request_id: int) -> str:
    return f"GDPR-{received.year}-{request_id:05d}"


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """GDPR Art. 12(3): a calendar month later, clamped to the month's last day."""
    month_index = when.month - 1 + months
    year, month = when.year + month_index // 12, month_index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)
