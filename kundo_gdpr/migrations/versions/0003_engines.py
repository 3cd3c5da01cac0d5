"""engines: forum parent index, trigram text indexes, erase progress per batch

PostgreSQL needs the pg_trgm extension (shipped with PostgreSQL); creating it
takes a superuser once, or run `CREATE EXTENSION pg_trgm` before upgrading.

SQLite gets, instead, a trigram FTS5 table per searched table (`<table>_fts`,
external content: it stores the index only, not a second copy of the texts),
kept in step by triggers on insert, update of the texts and delete (cascades
included). It needs SQLite >= 3.34 (tokenize='trigram'); the mention scan
falls back to LIKE over every row where the table is missing.

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


TEXT_COLUMNS = (
    ("forum_posts", "title"),
    ("forum_posts", "body"),
    ("mail_conversations", "subject"),
    ("mail_messages", "from_addr"),
    ("mail_messages", "to_addr"),
    ("mail_messages", "body"),
    ("chat_messages", "body"),
)


# The SQLite full-text tables: one per table, over the columns searched above.
FTS_TABLES = {
    "forum_posts": ("title", "body"),
    "mail_conversations": ("subject",),
    "mail_messages": ("from_addr", "to_addr", "body"),
    "chat_messages": ("body",),
}


def _create_fts(table: str, columns: tuple[str, ...]) -> None:
    fts = f"{table}_fts"
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    # External content: a 'delete' must pass the values that were indexed,
    # which is what old.* holds as long as only these triggers write the index.
    remove = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    add = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', "
               "content_rowid='id', tokenize='trigram')")
    op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END")
    op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END")
    op.execute(f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {cols} ON {table} "
               f"BEGIN {remove} {add} END")
    op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # the rows already there


def _drop_fts(table: str) -> None:
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{trigger}")
    op.execute(f"DROP TABLE IF EXISTS {table}_fts")


def upgrade() -> None:
    op.create_index(op.f("ix_forum_posts_parent_id"), "forum_posts", ["parent_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # In pg_catalog, so gin_trgm_ops is found whatever the search_path.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA pg_catalog")
    for table, column in TEXT_COLUMNS:
        # See models.desk_indexes.text_search_index: GIN on PostgreSQL, empty on SQLite.
        op.create_index(
            f"ix_{table}_{column}_trgm",
            table,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
            sqlite_where=sa.text("0"),
        )
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in FTS_TABLES.items():
            _create_fts(table, columns)
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
    if op.get_bind().dialect.name == "sqlite":
        for table in FTS_TABLES:
            _drop_fts(table)
    for table, column in TEXT_COLUMNS:
        op.drop_index(f"ix_{table}_{column}_trgm", table_name=table)
    op.drop_index(op.f("ix_forum_posts_parent_id"), table_name="forum_posts")
