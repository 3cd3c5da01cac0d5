"""confirmation by mail

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("sent_to", sa.String(length=320), nullable=False),
        sa.Column("proceed_to", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_via", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_confirmations_request_id_requests"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confirmations")),
        sa.UniqueConstraint("request_id", name=op.f("uq_confirmations_request_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_confirmations_token_hash")),
    )
    op.create_index(
        op.f("ix_confirmations_code_hash"), "confirmations", ["code_hash"], unique=False
    )
    op.create_index(op.f("ix_confirmations_state"), "confirmations", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_confirmations_state"), table_name="confirmations")
    op.drop_index(op.f("ix_confirmations_code_hash"), table_name="confirmations")
    op.drop_table("confirmations")
