"""Support agents who sign in to the review queue."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Column, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from kundo_gdpr.models.base import Base, UtcDateTime, utcnow


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_email_lower", func.lower(Column("email")), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
