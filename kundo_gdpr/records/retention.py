"""Minimisation after retention: a closed request keeps what proves, not who.

A request closed longer ago than `[retention] request_days` keeps its
reference, controller, sender, kinds, channels, dates, counts, findings' codes
and its audit trail (which never named anyone: kundo_gdpr.records.redact).
Everything else that could name a person goes, in one transaction per request:

- the request mail (and any copy of it stored as a duplicate): raw bytes
  emptied, its SHA-256 and size kept;
- each subject's address: replaced by its keyed hash (`email`) and masked form
  (`masked`); the erase progress rows likewise, and the names the desk had;
- the subject line and the sender's display name: emptied;
- findings: their code and severity only (the mail's words go);
- the result: subjects by their row ("subject#12"), counts kept;
- each reply: its body emptied, its SHA-256 kept beside purpose and Message-ID;
- export rows: deleted (their files went when the link expired; any left go too).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.models import Export, InboundMail, OutboundMail, Request
from kundo_gdpr.models.queue import (
    DONE,
    EXPIRED,
    HELD,
    IGNORED,
    MAIL_DUPLICATE,
    QUEUED,
    REJECTED,
    UNDONE,
    EraseProgress,
)
from kundo_gdpr.records import redact
from kundo_gdpr.records.hashing import KeyRing, masked

log = logging.getLogger(__name__)

# Closed for good: nothing more is done for these (failed and quarantined wait for
# an agent, so they keep everything until one acts).
CLOSED = (DONE, REJECTED, EXPIRED, IGNORED, UNDONE)
MINIMISED = "minimised"


@dataclasses.dataclass(frozen=True)
class Minimised:
    """What minimising one request changed (or would change)."""

    reference: str
    state: str
    closed_at: dt.datetime
    subjects: int
    mails: int
    replies: int
    exports: int

    def counts(self) -> dict[str, Any]:
        return {"subjects_hashed": self.subjects, "mails_emptied": self.mails,
                "replies_emptied": self.replies, "exports_deleted": self.exports}


def closed_at() -> Any:
    """When a request closed: done, else decided, else its last change (expired,
    ignored). Any later change to the row (a resend, a correction) moves it on."""
    return func.coalesce(Request.done_at, Request.decided_at, Request.updated_at)


def due(now: dt.datetime, request_days: int) -> Select[Request]:
    """Closed requests past their retention. One with a reply still to go out
    (queued, or held over the hourly limit) waits until it has gone."""
    cutoff = now - dt.timedelta(days=request_days)
    unsent = (select(OutboundMail.id)
              .where(OutboundMail.request_id == Request.id,
                     OutboundMail.state.in_((QUEUED, HELD)))
              .exists())
    return (select(Request)
            .where(Request.state.in_(CLOSED), Request.minimised_at.is_(None),
                   closed_at() < cutoff, ~unsent)
            .order_by(Request.id))


def minimise(session: Session, ring: KeyRing, request: Request, now: dt.datetime,
             dry_run: bool = False) -> Minimised:
    """Minimise one request in the caller's transaction (or only count, `dry_run`)."""
    mails = _mails(session, request)
    replies = list(session.scalars(
        select(OutboundMail).where(OutboundMail.request_id == request.id)))
    exports = list(session.scalars(select(Export).where(Export.request_id == request.id)))
    done = Minimised(request.reference or f"request#{request.id}", request.state,
                     request.done_at or request.decided_at or request.updated_at,
                     len(request.subjects), len(mails), len(replies), len(exports))
    if dry_run:
        return done
    tokens = audit.subject_tokens(session, request)
    _progress(session, ring, request)
    for subject in request.subjects:
        subject.masked = masked(subject.email)
        subject.email = ring.hash_subject(subject.email) or redact.token(subject.id)
    for mail in mails:
        mail.raw = b""
    for reply in replies:
        reply.sha256 = reply.sha256 or hashlib.sha256(reply.raw).hexdigest()
        reply.raw, reply.subject = b"", ""
    _exports(session, exports)
    request.subject_line = ""
    request.sender_name = None
    request.findings = [{"code": f.get("code"), "severity": f.get("severity")}
                        for f in request.findings]
    request.result = redact.redact(request.result, tokens) if request.result else None
    request.minimised_at = now
    audit.record(session, MINIMISED, request=request, **done.counts())
    return done


def _mails(session: Session, request: Request) -> list[InboundMail]:
    """The request's mail and the copies of it that arrived again (duplicates)."""
    mail = request.inbound_mail
    found = [mail]
    if mail.message_id:
        found += session.scalars(select(InboundMail).where(
            InboundMail.state == MAIL_DUPLICATE, InboundMail.message_id == mail.message_id,
            InboundMail.id != mail.id))
    return found


def _progress(session: Session, ring: KeyRing, request: Request) -> None:
    rows = session.scalars(select(EraseProgress).where(EraseProgress.request_id == request.id))
    for row in rows:
        row.subject = ring.hash_subject(row.subject) or row.subject[:1] + "***"
        row.names = []


def _exports(session: Session, exports: Sequence[Export]) -> None:
    for export in exports:
        try:
            Path(export.path).unlink(missing_ok=True)
        except OSError:  # the row goes; the file is reported, not kept silently
            log.exception("could not delete export file %s", export.path)
    if exports:
        session.execute(delete(Export).where(Export.id.in_([e.id for e in exports])))
