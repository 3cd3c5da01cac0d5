"""Stage sweep: what expires with time.

Reads `confirmations` in state `pending` past their 72 hours and writes them
`expired`, their request `unconfirmed` -> `expired` with a
`confirmation_expired` audit event and the reply telling the editor;
deletes export files whose link has expired (`actions.links.sweep`); and keeps
retention: requests closed longer ago than `[retention] request_days` are
minimised (`records.retention`), the mailbox's processed copies older than
`mailbox_days` deleted.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, db
from kundo_gdpr.actions import links
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.intake.source import MailSource
from kundo_gdpr.models import Confirmation, Request, utcnow
from kundo_gdpr.models.confirmations import EXPIRED as ROW_EXPIRED
from kundo_gdpr.models.confirmations import PENDING
from kundo_gdpr.models.queue import UNCONFIRMED
from kundo_gdpr.records import retention
from kundo_gdpr.records.hashing import key_ring
from kundo_gdpr.replies.context import reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.stages.confirm import CONFIRMATION_EXPIRED
from kundo_gdpr.stages.unit import Owner, Stage, quarantine


def sweep_exports(factory: sessionmaker[Session], config: Config | None = None) -> int:
    """Delete export files whose link has expired, and the stored replies'
    copies of them (the outbox folder's from `config`); how many were deleted."""
    return links.sweep(factory, config=config)


# What minimising changes, for the purge that takes the old bytes off the disk.
MINIMISED_TABLES = ["inbound_mail", "outbound_mail", "requests", "request_subjects",
                    "erase_progress", "exports"]


def minimise_due(
    factory: sessionmaker[Session], config: Config, now: dt.datetime | None = None,
    dry_run: bool = False,
) -> list[retention.Minimised]:
    """Minimise every request past `[retention] request_days`, one transaction
    each (or, `dry_run`, say what that would change and change nothing)."""
    now = now or utcnow()
    stmt = retention.due(now, config.retention.request_days)
    ring = key_ring(config)
    if dry_run:
        with factory() as session:
            return [retention.minimise(session, ring, r, now, dry_run=True)
                    for r in session.scalars(stmt)]
    done: list[retention.Minimised] = []
    while True:
        with factory.begin() as session:
            request = claim(session, stmt)
            if request is None:
                break
            done.append(retention.minimise(session, ring, request, now))
    if done:
        db.purge(factory.kw["bind"], MINIMISED_TABLES)
    return done


def purge_mailbox(source: MailSource, config: Config, now: dt.datetime | None = None,
                  dry_run: bool = False) -> int:
    """Delete the mailbox's processed copies past `[retention] mailbox_days`."""
    before = (now or utcnow()) - dt.timedelta(days=config.retention.mailbox_days)
    return source.purge_processed(before, dry_run=dry_run)


def _due(now: dt.datetime) -> Select[Confirmation]:
    return (select(Confirmation)
            .where(Confirmation.state == PENDING, Confirmation.expires_at <= now)
            .order_by(Confirmation.expires_at, Confirmation.id))


def expire_one(
    factory: sessionmaker[Session], config: Config, now: dt.datetime | None = None
) -> bool:
    """Expire the next confirmation past its 72 hours and tell the editor."""
    now = now or utcnow()
    with factory.begin() as session:
        row = claim(session, _due(now))
        if row is None:
            return False
        expire(session, config, row)
    return True


def expire(session: Session, config: Config, row: Confirmation) -> None:
    row.state = ROW_EXPIRED
    request = session.get(Request, row.request_id)
    assert request is not None
    if request.state == UNCONFIRMED:
        request.state = CONFIRMATION_EXPIRED
        audit.record(session, "confirmation_expired", request=request)
        context = reply_context(session, request, expires_at=row.expires_at)
        queue_reply(session, config, request, "confirm_expired", context)


def claim_next(session: Session) -> int | None:
    row = claim(session, _due(utcnow()))
    return row.id if row else None


def handle(factory: sessionmaker[Session], config: Config, confirmation_id: int) -> None:
    with factory.begin() as session:
        row = claim(session, _due(utcnow()).where(Confirmation.id == confirmation_id))
        if row is not None:
            expire(session, config, row)


def owner(session: Session, confirmation_id: int) -> Owner:
    row = session.get(Confirmation, confirmation_id)
    return (session.get(Request, row.request_id) if row else None), None


def give_up(session: Session, config: Config, confirmation_id: int, reason: str) -> None:
    """Expiring failed every time: the confirmation ends, its request is quarantined."""
    row = claim(session, _due(utcnow()).where(Confirmation.id == confirmation_id))
    if row is None:
        return
    row.state = ROW_EXPIRED
    request = session.get(Request, row.request_id)
    if request is not None and request.state == UNCONFIRMED:
        quarantine(session, request, "expire_confirmations", reason)


STAGE = Stage("expire_confirmations", claim_next, handle, owner, give_up)
