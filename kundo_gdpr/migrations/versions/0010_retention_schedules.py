"""retention schedules (rules, runs); an undo window may keep a schedule's run

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _windows(request_nullable: bool, with_run: bool) -> sa.Table:
    """undo_windows as it stands, for batch mode on SQLite without reflection
    (which warns about other tables' expression indexes)."""
    meta = sa.MetaData()
    sa.Table("requests", meta, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table("retention_runs", meta, sa.Column("id", sa.Integer(), primary_key=True))
    columns: list[Any] = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=request_nullable),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"],
                                name="fk_undo_windows_request_id_requests", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_undo_windows"),
        sa.UniqueConstraint("request_id", name="uq_undo_windows_request_id"),
        sa.Index("ix_undo_windows_closes_at", "closes_at"),
    ]
    if with_run:
        columns += [
            sa.Column("retention_run_id", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(["retention_run_id"], ["retention_runs.id"],
                                    name="fk_undo_windows_retention_run_id_retention_runs",
                                    ondelete="CASCADE"),
            sa.UniqueConstraint("retention_run_id", name="uq_undo_windows_retention_run_id"),
        ]
    return sa.Table("undo_windows", meta, *columns)


def upgrade() -> None:
    op.create_table(
        "retention_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("basis", sa.String(length=10), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_total", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_retention_rules_organization_id_organizations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_rules")),
    )
    op.create_index(op.f("ix_retention_rules_organization_id"), "retention_rules",
                    ["organization_id"], unique=False)
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("waits_for", sa.String(length=20), nullable=True),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=320), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["rule_id"], ["retention_rules.id"],
                                name=op.f("fk_retention_runs_rule_id_retention_rules"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    op.create_index(op.f("ix_retention_runs_rule_id"), "retention_runs", ["rule_id"],
                    unique=False)
    op.create_index(op.f("ix_retention_runs_state"), "retention_runs", ["state"], unique=False)
    with op.batch_alter_table("undo_windows", copy_from=_windows(False, False)) as batch:
        batch.alter_column("request_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("retention_run_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_undo_windows_retention_run_id_retention_runs"),
                                 "retention_runs", ["retention_run_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_unique_constraint(op.f("uq_undo_windows_retention_run_id"),
                                       ["retention_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("undo_windows", copy_from=_windows(True, True)) as batch:
        batch.drop_constraint(op.f("uq_undo_windows_retention_run_id"), type_="unique")
        batch.drop_constraint(op.f("fk_undo_windows_retention_run_id_retention_runs"),
                              type_="foreignkey")
        batch.drop_column("retention_run_id")
        batch.alter_column("request_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_retention_runs_state"), table_name="retention_runs")
    op.drop_index(op.f("ix_retention_runs_rule_id"), table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_index(op.f("ix_retention_rules_organization_id"), table_name="retention_rules")
    op.drop_table("retention_rules")
