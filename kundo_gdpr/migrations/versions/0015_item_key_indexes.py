"""item key indexes: the key of a forum post, mail conversation and chat session
indexed with its channel (and, on PostgreSQL, the id), so finding a subject's
items reads the index alone

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 13:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ITEMS = (("forum_posts", "author_key"), ("mail_conversations", "customer_key"),
         ("chat_sessions", "visitor_key"))


def upgrade() -> None:
    for table, key in ITEMS:
        op.create_index(f"ix_{table}_{key}_channel", table, [key, "channel_id"],
                        postgresql_include=["id"])
        op.drop_index(f"ix_{table}_{key}", table_name=table)


def downgrade() -> None:
    for table, key in ITEMS:
        op.create_index(f"ix_{table}_{key}", table, [key])
        op.drop_index(f"ix_{table}_{key}_channel", table_name=table)
