"""A private PostgreSQL for tests that must stop or restart the database.

`initdb` + `pg_ctl` on a free loopback port, in a temp folder, owned by a
non-root user when we are root (PostgreSQL refuses to run as root). Import the
fixture into a test module: `from tests.postgres import private_postgres  # noqa: F401`.
Missing binaries skip the test, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_server
from tests.servers import free_port

DB_NAME = "kundo"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian's layout), or PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


@dataclass
class PrivatePostgres:
    """One PostgreSQL cluster. Its port and data survive `stop`/`start`."""

    bin: Path
    base: Path
    port: int
    user: str | None  # run as this OS user (we are root), or as ourselves

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]], user=self.user, check=check,
            capture_output=True, text=True, cwd=self.base,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        # fsync=off only matters if the machine itself crashes. synchronous_commit stays
        # on: `stop("immediate")` is a crash for the server, and with it off a commit
        # already confirmed to a worker could be lost, which no real database does.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories='{self.base}' -c fsync=off "
                   "-c full_page_writes=off -c max_connections=100")
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"),
                         "-o", options, "-w", "-t", "30", "start", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start:\n{done.stderr}\n{self.log()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `immediate` is a crash as far as clients can tell."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url.rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {DB_NAME}"))
        admin.dispose()

    def log(self) -> str:
        path = self.base / "log"
        return path.read_text(errors="replace") if path.exists() else ""


def _os_user() -> str | None:
    if os.getuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("no non-root user to run PostgreSQL as")


def start_private_postgres() -> Iterator[PrivatePostgres]:
    """Start a cluster, yield it, then stop it and remove its files."""
    binaries = postgres_bin()
    if binaries is None:
        need_server("PostgreSQL server binaries (apt-get install postgresql)")
        raise AssertionError("unreachable")
    base = Path(tempfile.mkdtemp(prefix="kundo-pg-"))
    user = _os_user()
    if user is not None:
        entry: Any = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    server = PrivatePostgres(binaries, base, free_port(), user)
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL cluster of our own, with an empty database `kundo`."""
    yield from start_private_postgres()
