"""Shared fixtures: a real database (SQLite always, PostgreSQL when configured),
a config rooted in a temp folder, and the sample desk's named world."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config, from_dict
from kundo_gdpr.desk.seed import seed_demo
from kundo_gdpr.web import auth
from tests.templates import Templates, schema_of

PG_ENV = "KUNDO_GDPR_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI") == "true"


def need_server(what: str) -> None:
    """Skip a test whose server is missing, except in CI, where it fails."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2id with its smallest cost (1 pass over 8 KiB) instead of the product's
    64 MiB × 3 passes: the same hash format, verification and answers, without
    about 0.1 s of CPU per hash and per sign-in, which the web tests do hundreds
    of times (1.2 s each on a loaded 2-core machine). The dummy hash an unknown
    address is checked against is made the same way, as in the product."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", cheap)
        patch.setattr(auth, "_DUMMY", cheap.hash(secrets.token_urlsafe(16)))
        yield


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """The session's migrated (and seeded) databases that `engine` copies from."""
    made = Templates(tmp_path_factory.mktemp("templates"), os.environ.get(PG_ENV))
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, templates: Templates) -> Iterator[str]:
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
    admin.dispose()
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    templates.drop_later(schema)


@pytest.fixture
def engine(request: pytest.FixtureRequest, db_url: str, templates: Templates) -> Iterator[Engine]:
    """The test's database, migrated to head; already seeded when the test also
    wants `world`. A copy of the session's template (tests/templates.py), or,
    when the database already holds something, migrated in place."""
    kind = "world" if "world" in request.fixturenames else "migrated"
    if db_url.startswith("sqlite"):
        copied = templates.sqlite_copy(kind, Path(str(make_url(db_url).database)))
    else:
        copied = templates.pg_copy(kind, schema_of(db_url))
    eng = db.make_engine(db_url)
    if not copied:
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
    in every channel, as did twenty other customers. Usually `engine` has copied
    it in already, and seed_demo sees that and returns."""
    with factory.begin() as session:
        seed_demo(session)
