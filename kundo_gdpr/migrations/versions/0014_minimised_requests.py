"""minimisation after retention; events keep findings' codes, not the mail's words

Adds `requests.minimised_at`, `request_subjects.masked` and
`outbound_mail.sha256` (kundo_gdpr.records.retention). Findings in audit
events lose their "words" argument, the mail's own words: from now on
kundo_gdpr.audit never writes them (the request row keeps them until it is
minimised). The append-only trigger is lifted for this migration's own
transaction only.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 13:00:00.000000
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from kundo_gdpr.migrations.append_only import lifted
from kundo_gdpr.records.redact import without_words

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): request_subjects keeps its AUTOINCREMENT.
    op.add_column("requests", sa.Column("minimised_at", sa.DateTime(timezone=True)))
    op.add_column("request_subjects", sa.Column("masked", sa.String(320)))
    op.add_column("outbound_mail", sa.Column("sha256", sa.String(64)))
    bind = op.get_bind()
    changed: list[dict[str, Any]] = []
    for event_id, detail in bind.execute(sa.text(
            "SELECT id, detail FROM events WHERE action IN ('checked', 'rechecked')")):
        value = json.loads(detail) if isinstance(detail, str) else detail
        new = without_words(value)
        if new != value:
            changed.append({"event_id": event_id, "detail": new})
    if not changed:
        return
    events = sa.table("events", sa.column("id", sa.Integer()), sa.column("detail", sa.JSON()))
    with lifted():
        bind.execute(events.update().where(events.c.id == sa.bindparam("event_id"))
                     .values(detail=sa.bindparam("detail")), changed)


def downgrade() -> None:
    with op.batch_alter_table("outbound_mail") as batch:
        batch.drop_column("sha256")
    with op.batch_alter_table("request_subjects") as batch:
        batch.drop_column("masked")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("minimised_at")
