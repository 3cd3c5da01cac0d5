"""Stage fetch: mailbox -> `inbound_mail` (state `stored`).

Reads the mail source; writes `inbound_mail` rows in state `stored`, a
`mail_stored` audit event per new message, and `mail_quarantined` for a
message that cannot be stored (which the source then moves aside).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.intake.parse import ParseError, parse
from kundo_gdpr.intake.source import FetchedMail, MailSource
from kundo_gdpr.models import InboundMail, utcnow
from kundo_gdpr.models.queue import MAIL_STORED

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
