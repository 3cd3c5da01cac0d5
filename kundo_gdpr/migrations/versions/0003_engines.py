"""engines: forum parent index, export link fields

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 03:00:00.000000

Reserved in the chain so that work on several issues can add schema in
parallel; filled in by the change it is named for.
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
