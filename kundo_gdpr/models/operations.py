"""What the workers did, for /healthz and /metrics: per-stage counters and failures.

Workers write here, the web app reads: several workers on several machines
add to the same rows, so the figures are the deployment's, not one process's.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow


class StageStat(Base):
    """Running totals of one stage (fetch, parse, check, ...) over all workers."""

    __tablename__ = "stage_stats"

    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    passes: Mapped[int] = mapped_column(Integer, default=0)
    # Units of work done (mails stored, requests checked, replies sent, ...).
    units: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class StageFailure(Base):
    """A stage pass that raised (the database or a mail server was unreachable, or a
    bug): one row each, so /healthz can count the last hour's. The error text may
    name an address; it stays in the database and never becomes a metric label."""

    __tablename__ = "stage_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    stage: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    error: Mapped[str] = mapped_column(Text, default="")
