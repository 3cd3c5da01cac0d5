"""The agents' app's own records: server-side sessions, first approvals and recent
sign-in failures. Every web process reads and writes the same rows, so any number
of them can run behind one proxy.

A session cookie holds only a random id; the table keeps its sha256, so a
copy of the database does not let anyone sign in. Signing out, changing the
password or an admin ending an agent's sessions deletes the rows, and the
cookie is worth nothing from then on.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 hex of the cookie's random id.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"),
                                          index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class FirstApproval(Base):
    """Four-eyes (`policy.erase_needs_second_agent`): an erasure one agent approved,
    waiting for a second agent's confirmation before it runs."""

    __tablename__ = "first_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), unique=True
    )
    agent_email: Mapped[str] = mapped_column(String(320))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class SigninFailure(Base):
    """Recent failed sign-ins under one key: a client address or a typed account.

    One row per key, counted up by each failure; a failure after `web.throttle.WINDOW`
    without one starts the count again. Rows whose last failure is older than that
    slow nothing down and are deleted as failures come in.
    """

    __tablename__ = "signin_failures"

    # sha256 hex of "addr:<address>" or "acct:<typed address>": a fixed width for any
    # input (what was typed is in the audit event, which is where it belongs).
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
