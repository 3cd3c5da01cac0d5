"""Taking and restoring a database backup the way an operator would: a file
copy of the SQLite database, `pg_dump` and `psql` for PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from pathlib import Path

from sqlalchemy import Engine, make_url, text


class Backup:
    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.url = engine.url
        self.file = folder / "backup.dump"

    def take(self) -> None:
        self.engine.dispose()  # the last connection closes: the WAL is checkpointed
        if self.url.get_backend_name() == "sqlite":
            shutil.copyfile(self._sqlite_path(), self.file)
        else:
            subprocess.run(["pg_dump", "--no-owner", "-n", self._schema(), "-f", str(self.file),
                            self._libpq()], check=True)

    def restore(self) -> None:
        """Put the backup back in place of the database, as after losing it."""
        self.engine.dispose()
        if self.url.get_backend_name() == "sqlite":
            path = self._sqlite_path()
            for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
                extra.unlink(missing_ok=True)
            shutil.copyfile(self.file, path)
            return
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {self._schema()} CASCADE"))
        self.engine.dispose()
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(self.file),
                        self._libpq()], check=True, stdout=subprocess.DEVNULL)

    def _sqlite_path(self) -> Path:
        assert self.url.database
        return Path(self.url.database)

    def _schema(self) -> str:
        options = str(self.url.query.get("options", ""))
        return urllib.parse.unquote(options).split("search_path=", 1)[1]

    def _libpq(self) -> str:
        plain = make_url(self.url).set(drivername="postgresql", query={})
        return plain.render_as_string(hide_password=False)
