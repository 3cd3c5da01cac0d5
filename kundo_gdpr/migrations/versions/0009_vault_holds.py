"""safety window (undo_windows, vault_batches) and legal holds

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 09:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "undo_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"],
                                name=op.f("fk_undo_windows_request_id_requests"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undo_windows")),
        sa.UniqueConstraint("request_id", name=op.f("uq_undo_windows_request_id")),
    )
    op.create_index(op.f("ix_undo_windows_closes_at"), "undo_windows", ["closes_at"],
                    unique=False)
    op.create_table(
        "vault_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["window_id"], ["undo_windows.id"],
                                name=op.f("fk_vault_batches_window_id_undo_windows"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_batches")),
        sa.UniqueConstraint("window_id", "seq", name="uq_vault_batches_seq"),
    )
    op.create_index(op.f("ix_vault_batches_window_id"), "vault_batches", ["window_id"],
                    unique=False)
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"],
                                name=op.f("fk_legal_holds_channel_id_channels"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_legal_holds_organization_id_organizations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index(op.f("ix_legal_holds_organization_id"), "legal_holds",
                    ["organization_id"], unique=False)
    op.create_index(op.f("ix_legal_holds_subject"), "legal_holds", ["subject"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_legal_holds_subject"), table_name="legal_holds")
    op.drop_index(op.f("ix_legal_holds_organization_id"), table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_index(op.f("ix_vault_batches_window_id"), table_name="vault_batches")
    op.drop_table("vault_batches")
    op.drop_index(op.f("ix_undo_windows_closes_at"), table_name="undo_windows")
    op.drop_table("undo_windows")
