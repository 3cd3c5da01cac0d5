"""Databases made once per test session and copied into each test's own database.

Running every Alembic migration for each test, and seeding the sample desk for
each test that wants `world`, took most of the suite's database set-up time
(on a loaded 2-core machine 0.3–0.7 s to migrate and 2–3.5 s to seed, per test).
So each kind of start — `migrated` (the migrations at head) and `world` (that plus
`seed_demo`) — is built once per session with the real migrations and the real
seed, and a test gets its own copy:

- SQLite: a byte copy of the template file (closed first, so the WAL is
  checkpointed into the main file; the copy gets its own WAL when first opened).
- PostgreSQL: `pg_dump` of the template schema, replayed into the test's own
  schema (objects and rows, sequences at the same values, triggers and indexes
  created after the rows as in any restore).

tests/test_migrations.py still migrates for real, and checks that a copy has the
same schema and rows as a database migrated (and seeded) in place.
Without `pg_dump` (or one that cannot dump this server), PostgreSQL tests
migrate and seed in place as before.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, make_url, text

from kundo_gdpr import db
from kundo_gdpr.desk.seed import seed_demo

if TYPE_CHECKING:
    import psycopg

KINDS = ("migrated", "world")


def build(engine: Engine, kind: str) -> None:
    """What each kind of template holds, made the way a test would make it."""
    db.upgrade(engine)
    if kind == "world":
        with db.session_factory(engine).begin() as session:
            seed_demo(session)


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq tools (pg_dump, psql) take it."""
    return make_url(url).set(drivername="postgresql", query={}).render_as_string(
        hide_password=False)


def schema_of(url: str) -> str:
    """The schema a per-test PostgreSQL URL puts first in search_path."""
    options = urllib.parse.unquote(str(make_url(url).query.get("options", "")))
    return options.split("search_path=", 1)[1]


def schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _pg_dump() -> str | None:
    from tests.postgres import postgres_bin  # here: tests.postgres imports conftest

    binaries = postgres_bin()
    if binaries is not None and (binaries / "pg_dump").exists():
        return str(binaries / "pg_dump")
    return shutil.which("pg_dump")


@dataclass
class Templates:
    """The session's templates, each built on first use."""

    folder: Path
    pg_base: str | None
    _sqlite: dict[str, Path] = field(default_factory=dict)
    _pg: dict[str, str | None] = field(default_factory=dict)
    # One thread makes copies ahead, another drops finished tests' schemas: the
    # PostgreSQL server does that work while this process runs the tests.
    _filler: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1))
    _dropper: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1))
    _ahead: dict[str, deque[Future[str]]] = field(default_factory=dict)
    _dropping: list[Future[None]] = field(default_factory=list)

    def sqlite_copy(self, kind: str, target: Path) -> bool:
        """`target` becomes a copy of the `kind` template. False, and nothing done,
        when it exists already: the caller then migrates (and seeds) in place."""
        if target.exists():
            return False
        if kind not in self._sqlite:
            path = self.folder / f"{kind}.sqlite3"
            engine = db.make_engine(f"sqlite:///{path}")
            build(engine, kind)
            engine.dispose()  # the last connection closes: the WAL is checkpointed
            self._sqlite[kind] = path
        source = self._sqlite[kind]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        wal = Path(f"{source}-wal")
        if wal.exists():  # not checkpointed after all: it belongs to the copy too
            shutil.copyfile(wal, f"{target}-wal")
        return True

    def pg_copy(self, kind: str, schema: str) -> bool:
        """Make the empty `schema` a copy of the `kind` template: one made ahead in
        the background takes its name (a rename), and the next is started. False,
        and nothing done, when the schema already holds something or no usable
        pg_dump is here: the caller then migrates (and seeds) in place."""
        script = self._script(kind)
        if script is None:
            return False
        queue = self._ahead.setdefault(kind, deque())
        if not queue:
            queue.append(self._filler.submit(self._fill_new, kind))
        ready = queue.popleft().result()
        queue.append(self._filler.submit(self._fill_new, kind))  # for the next test
        import psycopg  # installed with the postgresql extra

        with self._connect() as conn:
            try:
                # RESTRICT (the default): refused if the test's schema holds anything.
                conn.execute(f"DROP SCHEMA {schema}".encode())
            except psycopg.errors.DependentObjectsStillExist:
                conn.rollback()
                self.drop_later(ready)
                return False
            conn.execute(f"ALTER SCHEMA {ready} RENAME TO {schema}".encode())
        return True

    def drop_later(self, schema: str) -> None:
        """DROP SCHEMA … CASCADE in the background, while the next test runs."""
        self._dropping.append(self._dropper.submit(self._drop, schema))

    def close(self) -> None:
        """Wait for the background work; drop the copies made for tests that never came."""
        for queue in self._ahead.values():
            for made in queue:
                self.drop_later(made.result())
        self._filler.shutdown(wait=True)
        for dropped in self._dropping:
            dropped.result()
        self._dropper.shutdown(wait=True)

    def _script(self, kind: str) -> str | None:
        if kind not in self._pg:
            self._pg[kind] = self._pg_template(kind)
        return self._pg[kind]

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg  # installed with the postgresql extra

        assert self.pg_base is not None
        return psycopg.connect(libpq_url(self.pg_base))

    def _fill_new(self, kind: str) -> str:
        """A new schema made as the `kind` template. A connection of its own: the
        dump's SET lines (search_path '' and the like) end with it. The script
        goes in one round trip and one transaction."""
        script = self._pg[kind]
        assert script is not None
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self._connect() as conn:
            conn.execute(f"CREATE SCHEMA {schema}".encode())
            conn.execute(script.replace(_PLACEHOLDER, schema).encode())
        return schema

    def _drop(self, schema: str) -> None:
        with self._connect() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())

    def _pg_template(self, kind: str) -> str | None:
        """The SQL that recreates the `kind` template in a schema named _PLACEHOLDER."""
        assert self.pg_base is not None
        dump = _pg_dump()
        if dump is None:
            return None
        schema = f"tmpl_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.pg_base)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            engine = db.make_engine(schema_url(self.pg_base, schema))
            build(engine, kind)
            engine.dispose()
            done = subprocess.run(
                [dump, "--no-owner", "--no-privileges", "--inserts", "--rows-per-insert=500",
                 "-n", schema, libpq_url(self.pg_base)],
                capture_output=True, text=True, check=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
        if done.returncode != 0:
            return None
        # psql meta-commands (\restrict) are for psql; the rest is plain SQL. The
        # schema's name is random, so replacing it touches nothing else.
        lines = [line for line in done.stdout.splitlines() if not line.startswith("\\")]
        script = "\n".join(lines).replace(f"CREATE SCHEMA {schema};", "")
        return script.replace(schema, _PLACEHOLDER)


_PLACEHOLDER = "kundo_template_schema_placeholder"
