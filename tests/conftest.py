"""Shared fixtures: a real database (SQLite always, PostgreSQL when configured),
a config rooted in a temp folder, and the sample desk's named world."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config, from_dict
from kundo_gdpr.desk.seed import seed_demo

PG_ENV = "KUNDO_GDPR_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI") == "true"


def need_server(what: str) -> None:
    """Skip a test whose server is missing, except in CI, where it fails."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        need_server(f"PostgreSQL (set {PG_ENV})")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = db.make_engine(db_url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


def make_config(tmp_path: Path, db_url: str, **sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {"database": {"url": db_url}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(data, root=tmp_path)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    return make_config(tmp_path, db_url)


@pytest.fixture
def world(factory: sessionmaker[Session]) -> None:
    """Cykelbolaget (editor eva@cykelbolaget.se) and Bokhandeln (olle@bokhandeln.se),
    each with mail, forum and chat; alice@example.com and bertil@example.org wrote
    in every channel, as did twenty other customers."""
    with factory.begin() as session:
        seed_demo(session)
