"""legal-hold events name the subject by keyed hash and masked form, not in clear

`hold_added` and `hold_ended` events used to carry the subject's normalised
address. Each such event's `subject` becomes `subject_hash` (the HMAC of
kundo_gdpr.records.hashing, with the configured key) and `subject_masked`
("a***@e******.se"). The append-only trigger is lifted for this migration's
own transaction only (kundo_gdpr.migrations.append_only).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 12:40:00.000000
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from kundo_gdpr.migrations.append_only import lifted
from kundo_gdpr.records.hashing import KeyRing, concealed, key_ring

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

HOLD_EVENTS = ("hold_added", "hold_ended")


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, detail FROM events WHERE action IN "
                                "('hold_added', 'hold_ended') ORDER BY id")).all()
    clear = [(event_id, value) for event_id, detail in rows
             if "subject" in (value := _loaded(detail))]
    if not clear:
        return
    ring = _ring()
    changed = [{"event_id": event_id, "detail": _hashed(value, ring)}
               for event_id, value in clear]
    events = sa.table("events", sa.column("id", sa.Integer()), sa.column("detail", sa.JSON()))
    with lifted():
        bind.execute(events.update().where(events.c.id == sa.bindparam("event_id"))
                     .values(detail=sa.bindparam("detail")), changed)


def _loaded(detail: Any) -> dict[str, Any]:
    value = json.loads(detail) if isinstance(detail, str) else detail
    return value if isinstance(value, dict) else {}


def _hashed(detail: dict[str, Any], ring: KeyRing) -> dict[str, Any]:
    subject = str(detail.pop("subject") or "")
    return {**detail, **concealed(ring, subject)}


def _ring() -> KeyRing:
    config = context.config.attributes.get("config")
    if config is None:
        raise RuntimeError(
            "migration 0012 hashes the subjects of legal-hold events and needs the hash "
            "key: run `kundo-gdpr db upgrade` with the deployment's config")
    return key_ring(config)


def downgrade() -> None:
    """Nothing to undo: the addresses are not kept anywhere to put back."""
