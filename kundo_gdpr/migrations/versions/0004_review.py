"""review: deadline extensions and corrections

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 03:00:00.000000

An agent may extend a request's deadline by up to two months (GDPR Art.
12(3)); the extended date and the reason told to the editor live on the
request. Corrections are audit events, so they need no table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "requests", sa.Column("deadline_extended_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("requests", sa.Column("deadline_extension_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("deadline_extension_reason")
        batch.drop_column("deadline_extended_until")
