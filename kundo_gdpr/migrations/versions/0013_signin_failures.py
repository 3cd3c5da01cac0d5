"""sign-in failures in the database, shared by every web process

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_failures",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_signin_failures")),
    )
    op.create_index(op.f("ix_signin_failures_last_at"), "signin_failures", ["last_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_signin_failures_last_at"), table_name="signin_failures")
    op.drop_table("signin_failures")
