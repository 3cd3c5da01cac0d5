"""Retention schedules: rules a controller sets, and their runs (actions/schedules.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow

# retention_rules.basis
OLDER = "older"  # items (conversations, threads, chats) with no activity for N months
INACTIVE = "inactive"  # customers with no activity in the channel kind for N months

# retention_runs.state
WAITING = "waiting"  # the preview waits for an agent's approval
APPROVED = "approved"
DONE = "done"
DISCARDED = "discarded"  # a newer preview replaced it, or the rule was removed
UNDONE = "undone"  # put back within its safety window


class RetentionRule(Base):
    __tablename__ = "retention_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # mail | forum | chat
    basis: Mapped[str] = mapped_column(String(10))
    months: Mapped[int] = mapped_column(Integer)
    # As [erase] for the kind: conversations | messages, posts | delete_threads, sessions.
    strategy: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    next_due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Items the last completed run touched; None: never run (the first run waits).
    last_run_total: Mapped[int | None] = mapped_column(Integer)


class RetentionRun(Base):
    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("retention_rules.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), index=True)
    # Why it waits: "first_run" or "growth"; None: approved by the rule's history.
    waits_for: Mapped[str | None] = mapped_column(String(20))
    cutoff: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # What the preview found: subject keys (inactive) or unit ids (older), per channel.
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(320))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # What the run removed so far, updated with each batch.
    result: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    done_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
