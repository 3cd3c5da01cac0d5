"""Stage sweep: what expires with time.

Reads `confirmations` in state `pending` past their 72 hours and writes them
`expired`, their request `unconfirmed` -> `expired` with a
`confirmation_expired` audit event and the reply telling the editor; and
deletes export files whose link has expired (`actions.links.sweep`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.actions import links
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.models import Confirmation, Request, utcnow
from kundo_gdpr.models.confirmations import EXPIRED as ROW_EXPIRED
from kundo_gdpr.models.confirmations import PENDING
from kundo_gdpr.models.queue import UNCONFIRMED
from kundo_gdpr.replies.context import reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.stages.confirm import CONFIRMATION_EXPIRED


def sweep_exports(factory: sessionmaker[Session], config: Config | None = None) -> int:
    """Delete export files whose link has expired, and the stored replies'
    copies of them (the outbox folder's from `config`); how many were deleted."""
    return links.sweep(factory, config=config)


def expire_one(
    factory: sessionmaker[Session], config: Config, now: dt.datetime | None = None
) -> bool:
    """Expire the next confirmation past its 72 hours and tell the editor."""
    now = now or utcnow()
    with factory.begin() as session:
        row = claim(
            session,
            select(Confirmation)
            .where(Confirmation.state == PENDING, Confirmation.expires_at <= now)
            .order_by(Confirmation.expires_at, Confirmation.id),
        )
        if row is None:
            return False
        row.state = ROW_EXPIRED
        request = session.get(Request, row.request_id)
        assert request is not None
        if request.state == UNCONFIRMED:
            request.state = CONFIRMATION_EXPIRED
            audit.record(session, "confirmation_expired", request=request)
            context = reply_context(session, request, expires_at=row.expires_at)
            queue_reply(session, config, request, "confirm_expired", context)
    return True
