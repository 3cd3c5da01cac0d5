"""engines: forum parent index, erase progress per batch

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_forum_posts_parent_id"), "forum_posts", ["parent_id"], unique=False)
    op.create_table(
        "erase_progress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("mentions", sa.JSON(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_erase_progress_request_id_requests"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erase_progress")),
        sa.UniqueConstraint("request_id", "subject", name="uq_erase_progress_subject"),
    )


def downgrade() -> None:
    op.drop_table("erase_progress")
    op.drop_index(op.f("ix_forum_posts_parent_id"), table_name="forum_posts")
