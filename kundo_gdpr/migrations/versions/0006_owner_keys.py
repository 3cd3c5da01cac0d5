"""owner keys: every owner address column gets a maintained, indexed normalised key

The data subject is matched on `*_key` (kundo_gdpr.identity.key) instead of
lower(address): every spelling of an address ("Anna <anna@x.se>",
" ANNA@x.se\t") is the same person, and the match stays an index lookup.
Chat messages get `sender_email` (which visitor wrote it, in a chat with
several). Existing rows get their keys here; a trigger clears a row's key
when its address changes outside the ORM, and the engines fill in any row
without a key before they match (kundo_gdpr.desk.keys.catch_up).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kundo_gdpr.identity import key

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (table, address column, key column)
KEYS = (
    ("forum_posts", "author_email", "author_key"),
    ("mail_conversations", "customer_email", "customer_key"),
    ("mail_messages", "from_addr", "from_key"),
    ("mail_messages", "to_addr", "to_key"),
    ("chat_sessions", "visitor_email", "visitor_key"),
    ("chat_messages", "sender_email", "sender_key"),
)
OLD_INDEXES = (
    ("forum_posts", "author_email"),
    ("mail_conversations", "customer_email"),
    ("mail_messages", "from_addr"),
    ("chat_sessions", "visitor_email"),
)


def _stale_trigger(dialect: str, table: str, address: str, column: str) -> list[str]:
    name = f"{table}_{column}_stale"
    if dialect == "postgresql":
        return [
            f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.{address} IS DISTINCT FROM OLD.{address}
                   AND NEW.{column} IS NOT DISTINCT FROM OLD.{column} THEN
                    NEW.{column} := NULL;
                END IF;
                RETURN NEW;
            END;
            $$""",
            f"CREATE TRIGGER {name} BEFORE UPDATE OF {address} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
    return [
        f"CREATE TRIGGER {name} AFTER UPDATE OF {address} ON {table} "
        f"WHEN new.{column} IS old.{column} AND new.{address} IS NOT old.{address} "
        f"BEGIN UPDATE {table} SET {column} = NULL WHERE id = new.id; END"
    ]


def _backfill(table: str, address: str, column: str) -> None:
    bind = op.get_bind()
    value = f"CAST({address} AS BLOB)" if bind.dialect.name == "sqlite" else address
    last = 0
    while rows := bind.execute(sa.text(
            f"SELECT id, {value} FROM {table} WHERE {address} IS NOT NULL AND id > :last "
            "ORDER BY id LIMIT 5000"), {"last": last}).all():
        bind.execute(sa.text(f"UPDATE {table} SET {column} = :k WHERE id = :id"),
                     [{"id": r[0], "k": key(r[1])} for r in rows])
        last = rows[-1][0]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("chat_messages", sa.Column("sender_email", sa.String(length=320), nullable=True))
    for table, address, column in KEYS:
        op.add_column(table, sa.Column(column, sa.String(length=320), nullable=True))
        _backfill(table, address, column)
        pending = sa.text(f"{column} IS NULL AND {address} IS NOT NULL")
        op.create_index(f"ix_{table}_{column}", table, [column])
        op.create_index(f"ix_{table}_{column}_pending", table, ["id"], sqlite_where=pending,
                        postgresql_where=pending)
        for statement in _stale_trigger(dialect, table, address, column):
            op.execute(statement)
    for table, address in OLD_INDEXES:
        op.drop_index(f"ix_{table}_{address}_lower", table_name=table)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, address in OLD_INDEXES:
        op.create_index(f"ix_{table}_{address}_lower", table, [sa.text(f"lower({address})")])
    for table, _address, column in reversed(KEYS):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_{column}_stale"
                   + (f" ON {table}" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_{column}_stale()")
        op.drop_index(f"ix_{table}_{column}_pending", table_name=table)
        op.drop_index(f"ix_{table}_{column}", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("sender_email")
