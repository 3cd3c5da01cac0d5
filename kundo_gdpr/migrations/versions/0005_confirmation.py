"""confirmation by mail; audit events made append-only by trigger

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


# The audit trail is append-only in the database itself, so neither a bug nor
# raw SQL can rewrite history (kundo_gdpr/audit.py has the ORM-side guard).
APPEND_ONLY = {
    "postgresql": [
        """
        CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit events are append-only (% on events)', TG_OP;
        END;
        $$
        """,
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION events_append_only()",
    ],
    "sqlite": [
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE on events)'); END",
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'audit events are append-only (DELETE on events)'); END",
    ],
}
UNDO_APPEND_ONLY = {
    "postgresql": [
        "DROP TRIGGER events_append_only ON events",
        "DROP FUNCTION events_append_only()",
    ],
    "sqlite": ["DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"],
}


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
    for statement in APPEND_ONLY[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    for statement in UNDO_APPEND_ONLY[op.get_bind().dialect.name]:
        op.execute(statement)
    op.drop_index(op.f("ix_confirmations_state"), table_name="confirmations")
    op.drop_index(op.f("ix_confirmations_code_hash"), table_name="confirmations")
    op.drop_table("confirmations")
