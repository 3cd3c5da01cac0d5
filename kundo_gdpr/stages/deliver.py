"""Stage deliver: `outbound_mail` `queued` -> `sent` | `failed` (and `held`
-> `queued` when the hourly limit allows, or `held` -> `bundled` into one digest
when more than `service.digest_after` wait for one address).

Reads the outbox; writes each reply's delivery state, attempts and last
error, with `reply_sent`/`reply_retry`/`reply_failed` audit events
(`replies.outbox`). A transport's own failure (TransportError) is retried
with backoff there; anything else a send raises is counted by the driver
like any stage's failure, and after `service.max_attempts` the reply is
`failed` with that reason.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.models import OutboundMail, Request
from kundo_gdpr.models.queue import SEND_FAILED
from kundo_gdpr.replies import outbox
from kundo_gdpr.replies.digest import bundle_held
from kundo_gdpr.replies.transports import Transport
from kundo_gdpr.stages.unit import Owner, Stage


def deliver_all(
    factory: sessionmaker[Session], config: Config, transport: Transport,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Send every reply that is due; returns how many were sent or failed.

    Released replies count as work only once sent, so an idle pass stays idle.
    """
    release(factory, config)
    done = 0
    while not should_stop() and outbox.deliver_one(factory, config, transport):
        done += 1
    return done


def release(factory: sessionmaker[Session], config: Config) -> None:
    """Before sending: bundle what waits too long for one address into a digest,
    and queue held replies the hourly limit now allows."""
    bundle_held(factory, config)
    outbox.release_due(factory, config)


def stage(transport: Transport) -> Stage:
    """The deliver stage for the driver, sending through `transport`."""

    def handle(factory: sessionmaker[Session], config: Config, reply_id: int) -> None:
        outbox.deliver(factory, config, transport, reply_id)

    return Stage("deliver", claim_next, handle, owner, give_up, describe)


def describe(session: Session, reply_id: int) -> tuple[str, str]:
    row = session.get(OutboundMail, reply_id)
    if row is None:
        return f"reply#{reply_id}", "gone"
    request, _ = owner(session, reply_id)
    name = f"{request.reference} " if request and request.reference else ""
    return f"{name}reply#{row.id} ({row.purpose})", row.state


def claim_next(session: Session) -> int | None:
    row = claim(session, outbox.due())
    return row.id if row else None


def owner(session: Session, reply_id: int) -> Owner:
    row = session.get(OutboundMail, reply_id)
    request = session.get(Request, row.request_id) if row and row.request_id else None
    return request, None


def give_up(session: Session, config: Config, reply_id: int, reason: str) -> None:
    """Sending raised every time: the reply is `failed` with the reason; an agent
    can resend it once the cause is fixed."""
    row = claim(session, outbox.due().where(OutboundMail.id == reply_id))
    if row is None:
        return
    row.state = SEND_FAILED
    row.last_error = reason
    request, _ = owner(session, reply_id)
    audit.record(session, "reply_failed", request=request, message_id=row.message_id,
                 error=reason)
