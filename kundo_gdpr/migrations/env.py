"""Alembic environment: always online, on the engine handed in by kundo_gdpr.db."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from kundo_gdpr.models import Base

engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Workers starting together upgrade one after the other, not at once
            # (per schema: deployments sharing a database do not wait for each other).
            connection.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(1802858085, hashtext(current_schema()))")
        context.run_migrations()
    connection.commit()
