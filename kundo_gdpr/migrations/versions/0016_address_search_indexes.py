"""address search indexes: the trigram indexes of mail messages' address columns
hold only the values that are not simply their key

A plain address in its normalised form (most values) is found by its key's
B-tree index; the substring search for the subject's address in other forms
(a display name, several recipients, another case, an encoded `@`) reads a
trigram index of the other values only. See models.desk_indexes.address_search_index.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = (("from_addr", "from_key"), ("to_addr", "to_key"))


def upgrade() -> None:
    for address, key in COLUMNS:
        op.drop_index(f"ix_mail_messages_{address}_trgm", table_name="mail_messages")
        op.create_index(
            f"ix_mail_messages_{address}_other_trgm",
            "mail_messages",
            [sa.func.nullif(sa.column(address), sa.column(key)).label(address)],
            postgresql_using="gin",
            postgresql_ops={address: "gin_trgm_ops"},
            sqlite_where=sa.text("0"),
        )


def downgrade() -> None:
    for address, _key in COLUMNS:
        op.drop_index(f"ix_mail_messages_{address}_other_trgm", table_name="mail_messages")
        op.create_index(
            f"ix_mail_messages_{address}_trgm",
            "mail_messages",
            [address],
            postgresql_using="gin",
            postgresql_ops={address: "gin_trgm_ops"},
            sqlite_where=sa.text("0"),
        )
