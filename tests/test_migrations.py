"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from kundo_gdpr import db
from kundo_gdpr.models import Base


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLite cannot reflect expression indexes; PostgreSQL compares them.
        warnings.simplefilter("ignore")
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    before = sorted(inspect(engine).get_table_names())
    db.upgrade(engine)
    assert sorted(inspect(engine).get_table_names()) == before
    assert "requests" in before and "forum_posts" in before
