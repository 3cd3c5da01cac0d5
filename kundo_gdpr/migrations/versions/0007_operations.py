"""stage counters and failures for /healthz and /metrics

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stage_stats",
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("stage", name=op.f("pk_stage_stats")),
    )
    op.create_table(
        "stage_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_failures")),
    )
    op.create_index(op.f("ix_stage_failures_at"), "stage_failures", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_stage_failures_at"), table_name="stage_failures")
    op.drop_table("stage_failures")
    op.drop_table("stage_stats")
