"""The safety window's records, and legal holds.

`undo_windows` has one row per erased request while the window is open: the
request's random key, and when the window closes. `vault_batches` holds the
before images of every row the erase deleted or changed, one sealed blob per
erase batch (AES-GCM with that key). Closing the window deletes the batches
and overwrites the key with NULL: the row stays, as the record of when undo
stopped being possible. Without the key a batch is unreadable, so a copy of
the database taken during the window (a backup) becomes useless once the key
is gone from the live one.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow


class UndoWindow(Base):
    __tablename__ = "undo_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The erase it keeps: a request's, or a retention schedule's run (one of the two).
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), unique=True
    )
    retention_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("retention_runs.id", ondelete="CASCADE"), unique=True
    )
    # 32 random bytes (AES-256-GCM); NULL once the window has closed or the erase was undone.
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    closes_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    undone_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class VaultBatch(Base):
    __tablename__ = "vault_batches"
    __table_args__ = (UniqueConstraint("window_id", "seq", name="uq_vault_batches_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(
        ForeignKey("undo_windows.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    # zlib-compressed JSON of the rows' before images, encrypted and authenticated.
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class LegalHold(Base):
    """A subject's items an organization must keep (e.g. bookkeeping law): an
    erase skips them until the hold ends. `channel_id` NULL: every channel of
    the organization."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(320), index=True)  # normalised key
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(320))
