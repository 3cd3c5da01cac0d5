"""Stage confirm: `unconfirmed` -> where the checks sent the request.

Confirmation by mail (config `policy.confirm_by_mail`).

A request that passes its checks waits in state `unconfirmed` while the
editor's stored address gets a one-time link and code. Confirming (POST on
the link's page, or a reply from that address with the code) moves it on to
where the checks sent it; after 72 hours unconfirmed it expires and the
editor is told (that expiry is the sweep stage's). Only sha256 hashes of the
token and code are stored. Reads and writes `confirmations` rows and the
request's state `unconfirmed`; the receipt comes from `decide.acknowledge`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.models import Confirmation, Request, utcnow
from kundo_gdpr.models.confirmations import CONFIRMED, PENDING, digest
from kundo_gdpr.models.confirmations import EXPIRED as ROW_EXPIRED
from kundo_gdpr.models.queue import APPROVED, EXPIRED, NEEDS_REVIEW, UNCONFIRMED
from kundo_gdpr.replies.context import reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.stages.decide import acknowledge, policy_state

# requests.state after waiting in vain (the confirmation row's own EXPIRED is the same word).
CONFIRMATION_EXPIRED = EXPIRED
TTL = dt.timedelta(hours=72)


class ConfirmError(Exception):
    """A token that cannot confirm: `reason` is unknown, used or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Pending:
    """What the confirmation page shows before the editor presses the button."""

    reference: str
    language: str
    expires_at: dt.datetime


def wanted(config: Config, request: Request) -> bool:
    """Whether this checked request must be confirmed before it goes on."""
    return (
        config.policy.confirm_by_mail
        and request.state in (NEEDS_REVIEW, APPROVED)
        # Set only when the sender is a known editor: the address is the stored one.
        and request.editor_id is not None
        and bool(request.sender)
    )


def ask(
    session: Session, config: Config, request: Request, now: dt.datetime | None = None,
    forced_review: bool = False,
) -> str:
    """Hold the request and mail the editor's stored address a link and code.

    Returns the link token (only the caller that asks ever sees it in clear).
    """
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10**8):08d}"
    assert request.sender  # wanted() holds: the editor's stored address
    row = Confirmation(
        request_id=request.id,
        token_hash=digest(token),
        code_hash=digest(code),
        sent_to=request.sender,
        # needs_review when the checks ask for an agent; otherwise the policy in
        # force when the editor confirms decides (approved: "policy decides").
        proceed_to=NEEDS_REVIEW if forced_review else APPROVED,
        state=PENDING,
        created_at=now,
        expires_at=now + TTL,
    )
    session.add(row)
    request.state = UNCONFIRMED
    audit.record(session, "confirmation_requested", request=request,
                 to=request.sender, expires_at=row.expires_at.isoformat())
    link = f"{config.web.base_url.rstrip('/')}/confirm/{token}"
    context = reply_context(session, request, link=link, code=f"{code[:4]}-{code[4:]}",
                            expires_at=row.expires_at)
    queue_reply(session, config, request, "confirm_request", context)
    return token


def pending(session: Session, token: str, now: dt.datetime | None = None) -> Pending:
    """The request a token would confirm, without confirming it (GET is safe)."""
    row, request = _by_token(session, token, now or utcnow())
    return Pending(request.reference or "", request.language, row.expires_at)


def confirm_token(
    session: Session, config: Config, token: str, now: dt.datetime | None = None
) -> Request:
    """Confirm by the link's POST. Single use: a second call raises ConfirmError("used")."""
    now = now or utcnow()
    row, request = _by_token(session, token, now)
    _proceed(session, config, row, request, via="link", now=now)
    return request


def confirm_by_mail(
    session: Session, config: Config, confirmation_id: int, now: dt.datetime | None = None
) -> Request | None:
    """Confirm by the code in an editor's reply, which the `confirmation_reply`
    check found (`models.confirmations.pending_for_code`); None if it is no
    longer pending."""
    now = now or utcnow()
    row = session.get(Confirmation, confirmation_id, with_for_update=True)
    if row is None or row.state != PENDING or row.expires_at <= now:
        return None
    request = session.get(Request, row.request_id)
    assert request is not None
    _proceed(session, config, row, request, via="mail", now=now)
    return request


def _by_token(session: Session, token: str, now: dt.datetime) -> tuple[Confirmation, Request]:
    row = session.scalar(
        select(Confirmation).where(Confirmation.token_hash == digest(token)).with_for_update()
    )
    # compare_digest on the hashes keeps timing from telling a near miss.
    if row is None or not hmac.compare_digest(row.token_hash, digest(token)):
        raise ConfirmError("unknown")
    if row.state == CONFIRMED:
        raise ConfirmError("used")
    if row.state == ROW_EXPIRED or row.expires_at <= now:
        raise ConfirmError("expired")
    request = session.get(Request, row.request_id)
    if request is None or request.state != UNCONFIRMED:
        raise ConfirmError("used")
    return row, request


def _proceed(
    session: Session, config: Config, row: Confirmation, request: Request, via: str,
    now: dt.datetime,
) -> None:
    """Move the request on to where its checks sent it, with its receipt."""
    row.state = CONFIRMED
    row.confirmed_at = now
    row.confirmed_via = via
    request.state = NEEDS_REVIEW if row.proceed_to == NEEDS_REVIEW else policy_state(config)
    actor = f"editor:{row.sent_to}"
    audit.record(session, "confirmed", request=request, actor=actor, via=via,
                 state=request.state)
    acknowledge(session, config, request, now)
