"""The request queue: inbound mail, requests, audit events, the outbox, exports.

States (see DESIGN.md) live in one column per table and move forward only
through the stage functions, each in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow

# inbound_mail.state
MAIL_STORED = "stored"  # raw bytes kept, not parsed yet
MAIL_PARSED = "parsed"  # a request row exists for it
MAIL_DUPLICATE = "duplicate"  # the same request arrived before

# requests.state
PARSED = "parsed"
NEEDS_REVIEW = "needs_review"
APPROVED = "approved"
REJECTED = "rejected"
DONE = "done"
FAILED = "failed"
IGNORED = "ignored"  # machine mail: stored, never answered
QUARANTINED = "quarantined"  # cannot be acted on or answered; an agent looks
UNCONFIRMED = "unconfirmed"  # policy.confirm_by_mail: waiting for the editor (confirm.py)
EXPIRED = "expired"  # not confirmed within 72 hours; closed, nothing done
UNDONE = "undone"  # an erase put back by an admin within the safety window (actions/vault/)
REQUEST_STATES = (
    PARSED, NEEDS_REVIEW, UNCONFIRMED, APPROVED, REJECTED, DONE, FAILED, IGNORED, QUARANTINED,
    EXPIRED, UNDONE,
)
OPEN_STATES = (PARSED, NEEDS_REVIEW, UNCONFIRMED, APPROVED)

# outbound_mail.state
QUEUED = "queued"
SENT = "sent"
SEND_FAILED = "failed"
HELD = "held"  # over the per-sender rate limit; an agent releases it
BUNDLED = "bundled"  # held, then told in a digest mail instead (replies/digest.py)


class InboundMail(Base):
    __tablename__ = "inbound_mail"
    __table_args__ = (UniqueConstraint("source", "source_key", name="uq_inbound_mail_source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    # Identity within the source: a Maildir file name, or "UIDVALIDITY:UID".
    source_key: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default=MAIL_STORED, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    request: Mapped[Request | None] = relationship(back_populates="inbound_mail")


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(40), unique=True)
    inbound_mail_id: Mapped[int] = mapped_column(
        ForeignKey("inbound_mail.id", ondelete="RESTRICT"), unique=True
    )
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), index=True
    )
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    sender: Mapped[str | None] = mapped_column(String(320), index=True)
    sender_name: Mapped[str | None] = mapped_column(String(200))
    subject_line: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(2), default="sv")
    assertion: Mapped[bool] = mapped_column(Boolean, default=False)
    authenticated: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), default=PARSED, index=True)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Each check's finding: {"code": ..., "severity": ..., "args": {...}}.
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Counts per channel kind and item kind once run: {"erase": {...}, "export": {...}}.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Art. 12(3) allows two more months; set by an agent, with the reason told to the editor.
    deadline_extended_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    deadline_extension_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(320))
    # The agent who took the request ("take" in the queue); none: anyone's.
    assignee: Mapped[str | None] = mapped_column(String(320), index=True)
    done_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Set once its retention ended and what named people was taken out
    # (kundo_gdpr.records.retention); the request row, its counts and events stay.
    minimised_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    inbound_mail: Mapped[InboundMail] = relationship(back_populates="request")
    subjects: Mapped[list[RequestSubject]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RequestSubject.id"
    )
    channels: Mapped[list[RequestChannel]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RequestChannel.channel_id"
    )


class RequestSubject(Base):
    __tablename__ = "request_subjects"
    # AUTOINCREMENT on SQLite: audit events name a subject by this row's id
    # ("subject#12"), so an id must never be given to another subject later.
    __table_args__ = (UniqueConstraint("request_id", "email", name="uq_request_subjects_email"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    # The address; once the request is minimised, its keyed hash ("kid:hex").
    email: Mapped[str] = mapped_column(String(320), index=True)
    # Set on minimising: "a***@e******.se", what people are shown from then on.
    masked: Mapped[str | None] = mapped_column(String(320))

    request: Mapped[Request] = relationship(back_populates="subjects")

    @property
    def shown(self) -> str:
        """The address, or its masked form once the request is minimised."""
        return self.masked or self.email


class RequestChannel(Base):
    """A channel the request covers: of a named kind, edited by the sender."""

    __tablename__ = "request_channels"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )

    request: Mapped[Request] = relationship(back_populates="channels")


class Event(Base):
    """The audit trail. Rows are only ever inserted."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="RESTRICT"), index=True
    )
    inbound_mail_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_mail.id", ondelete="RESTRICT"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboundMail(Base):
    """A reply, rendered in full when queued, so a resend is byte-identical."""

    __tablename__ = "outbound_mail"
    __table_args__ = (Index("ix_outbound_mail_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="RESTRICT"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    to_addr: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(Text)
    # Empty once the request is minimised; `sha256` then says what it was.
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class Export(Base):
    """An export file on disk, kept until it expires."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="RESTRICT"), index=True
    )
    subject: Mapped[str] = mapped_column(String(320))
    path: Mapped[str] = mapped_column(String(1000))
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_download_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    def kept(self, now: dt.datetime) -> bool:
        """Whether the file may still be handed out: not expired, not swept."""
        return self.deleted_at is None and self.expires_at > now


class EraseProgress(Base):
    """How far erasing one subject of a request has come.

    Updated in the same transaction as each erase batch, so after a crash the
    counts here are exactly what committed batches removed, and a re-run adds
    only what is left.
    """

    __tablename__ = "erase_progress"
    __table_args__ = (UniqueConstraint("request_id", "subject", name="uq_erase_progress_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="RESTRICT"))
    subject: Mapped[str] = mapped_column(String(320))
    # The subject's stored names, taken before the first batch removes them.
    names: Mapped[list[str]] = mapped_column(JSON, default=list)
    counts: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON, default=dict)
    # Others' items that named the subject, as listed in the request's report.
    mentions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Where the scan of others' items resumes: {table: last id done}.
    cursor: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
