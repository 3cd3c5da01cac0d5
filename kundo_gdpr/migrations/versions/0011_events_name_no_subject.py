"""audit events name subjects by their request_subjects row, never in clear

The one rewrite the append-only log ever gets: each event's detail has its
request's subjects' addresses replaced by "subject#<row id>"
(kundo_gdpr.records.redact). The trigger that refuses UPDATE is dropped for
this migration's own transaction only and created again before it ends.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 10:30:00.000000
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

from kundo_gdpr.identity import key
from kundo_gdpr.migrations.append_only import lifted
from kundo_gdpr.records.redact import redact, token

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# SQLite gives a deleted row's id to the next row unless the table says
# AUTOINCREMENT; a subject's id, named by events, must never be reused.
# (PostgreSQL's sequence never reuses one.)
SQLITE_AUTOINCREMENT = [
    "CREATE TABLE request_subjects_new ("
    " id INTEGER NOT NULL CONSTRAINT pk_request_subjects PRIMARY KEY AUTOINCREMENT,"
    " request_id INTEGER NOT NULL, email VARCHAR(320) NOT NULL,"
    " CONSTRAINT fk_request_subjects_request_id_requests FOREIGN KEY(request_id)"
    " REFERENCES requests (id) ON DELETE CASCADE,"
    " CONSTRAINT uq_request_subjects_email UNIQUE (request_id, email))",
    "INSERT INTO request_subjects_new (id, request_id, email)"
    " SELECT id, request_id, email FROM request_subjects",
    "DROP TABLE request_subjects",
    "ALTER TABLE request_subjects_new RENAME TO request_subjects",
    "CREATE INDEX ix_request_subjects_email ON request_subjects (email)",
]


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_AUTOINCREMENT:
            op.execute(statement)
    tokens: dict[int, dict[str, str]] = defaultdict(dict)
    for request_id, row_id, email in bind.execute(
            sa.text("SELECT request_id, id, email FROM request_subjects")):
        if found := key(email):
            tokens[request_id][found] = token(row_id)
    events = sa.table("events", sa.column("id", sa.Integer()), sa.column("detail", sa.JSON()))
    changed: list[dict[str, Any]] = []
    rows = bind.execute(sa.text(
        "SELECT e.id, e.detail, coalesce(e.request_id, r.id) FROM events e "
        "LEFT JOIN requests r ON r.inbound_mail_id = e.inbound_mail_id"))
    for event_id, detail, request_id in rows:
        value = json.loads(detail) if isinstance(detail, str) else detail
        if request_id is None or not value:
            continue
        new = redact(value, tokens.get(request_id, {}))
        if new != value:
            changed.append({"event_id": event_id, "detail": new})
    if not changed:
        return
    with lifted():
        bind.execute(events.update().where(events.c.id == sa.bindparam("event_id"))
                     .values(detail=sa.bindparam("detail")), changed)


def downgrade() -> None:
    """Nothing to undo: the addresses are not kept anywhere to put back."""
