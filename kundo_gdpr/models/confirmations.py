"""Confirmation by mail (config `policy.confirm_by_mail`): one row per request asked.

Only hashes of the link token and the code are stored: a copy of the
database does not let anyone confirm a request.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow

# confirmations.state
PENDING = "pending"
CONFIRMED = "confirmed"
EXPIRED = "expired"


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
