"""Confirmation by mail (config `policy.confirm_by_mail`): one row per request asked.

Only hashes of the link token and the code are stored: a copy of the
database does not let anyone confirm a request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow

# confirmations.state
PENDING = "pending"
CONFIRMED = "confirmed"
EXPIRED = "expired"

# The code as written in the mail ("1234-5678"); a reply may drop the dash.
CODE = re.compile(r"(?<!\d)(\d{4})[- ]?(\d{4})(?!\d)")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Confirmation(Base):
    __tablename__ = "confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="RESTRICT"), unique=True
    )
    # sha256 hex of the link's token and of the code in the mail.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    # The editor's stored address the confirmation mail went to.
    sent_to: Mapped[str] = mapped_column(String(320))
    # The state the request moves to once confirmed: needs_review or approved.
    proceed_to: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # "link" or "mail".
    confirmed_via: Mapped[str | None] = mapped_column(String(10))


def pending_for_code(
    session: Session, sender: str, text: str, now: dt.datetime
) -> Confirmation | None:
    """The sender's pending confirmation whose code `text` contains, if any; locked.

    Only a pending confirmation sent to `sender` (an editor's stored address,
    checked by the caller to be authenticated) can match. Reads only.
    """
    hashes = {digest(a + b) for a, b in CODE.findall(text)}
    if not hashes:
        return None
    return session.scalar(
        select(Confirmation)
        .where(Confirmation.state == PENDING, Confirmation.sent_to == sender.lower(),
               Confirmation.code_hash.in_(hashes), Confirmation.expires_at > now)
        .order_by(Confirmation.id)
        .with_for_update()
    )
