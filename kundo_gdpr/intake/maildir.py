"""A Maildir as a mail source: new/ is the queue, cur/ what has been stored.

Maildir's own delivery protocol (write to tmp/, rename into new/) means a file
in new/ is always complete, so reading it needs no lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

from kundo_gdpr.intake.source import FetchedMail


class MaildirSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"maildir:{path}"
        for sub in ("tmp", "new", "cur", "quarantine"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def pending(self) -> Iterator[FetchedMail]:
        for entry in sorted(os.scandir(self.path / "new"), key=lambda e: e.name):
            if not entry.is_file() or entry.name.startswith("."):
                continue
            try:
                raw = Path(entry.path).read_bytes()
            except FileNotFoundError:  # another worker took it meanwhile
                continue
            yield FetchedMail(key=_key(entry.name), raw=raw)

    def done(self, key: str) -> None:
        self._move(key, self.path / "cur", ":2,S")

    def quarantine(self, key: str, reason: str) -> None:
        self._move(key, self.path / "quarantine", "")
        (self.path / "quarantine" / f"{key}.reason").write_text(reason + "\n", encoding="utf-8")

    def purge_processed(self, before: dt.datetime, dry_run: bool = False) -> int:
        """Files in cur/ delivered before `before` (a move into cur/ keeps the
        delivery time as the file's mtime)."""
        cutoff = before.timestamp()
        done = 0
        for entry in os.scandir(self.path / "cur"):
            try:
                old = entry.is_file() and entry.stat().st_mtime < cutoff
                if old and not dry_run:
                    os.unlink(entry.path)
            except FileNotFoundError:  # another worker purged it
                continue
            done += old
        return done

    def _move(self, key: str, folder: Path, suffix: str) -> None:
        for entry in os.scandir(self.path / "new"):
            if _key(entry.name) == key:
                # Gone already: another worker moved it first.
                with contextlib.suppress(FileNotFoundError):
                    os.replace(entry.path, folder / f"{key}{suffix}")
                return


def _key(filename: str) -> str:
    # Maildir info (":2,FLAGS") is not part of the message's identity.
    return filename.split(":", 1)[0]


def deliver(path: Path, raw: bytes, name: str) -> Path:
    """Put a message into a Maildir the way an MTA does (tmp/ then new/)."""
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    tmp = path / "tmp" / name
    tmp.write_bytes(raw)
    final = path / "new" / name
    os.replace(tmp, final)
    return final
