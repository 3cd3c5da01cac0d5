"""The append-only trigger on `events`, for the migrations that rewrite events once.

A migration that must rewrite old events (0011, 0012) drops the trigger for its
own transaction only and creates it again, exactly as migration 0005 made it,
before that transaction ends: no one else ever sees `events` without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

CREATE = {
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
DROP = {
    "postgresql": [
        "DROP TRIGGER events_append_only ON events",
        "DROP FUNCTION events_append_only()",
    ],
    "sqlite": ["DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"],
}


@contextmanager
def lifted() -> Iterator[None]:
    """The trigger away for the body, inside the migration's transaction."""
    dialect = op.get_bind().dialect.name
    for statement in DROP[dialect]:
        op.execute(statement)
    yield
    for statement in CREATE[dialect]:
        op.execute(statement)
