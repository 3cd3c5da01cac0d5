"""The MailSource protocol: where request mails come from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class FetchedMail:
    """One message as it sits in the source, identified by a stable key."""

    key: str
    raw: bytes


class MailSource(Protocol):
    """A mailbox. Contract: `pending` yields messages not yet marked done;
    `done` is called only after the message is committed to the database,
    so a crash in between yields it again (and the store dedupes it)."""

    name: str

    def pending(self) -> Iterator[FetchedMail]: ...

    def done(self, key: str) -> None: ...

    def quarantine(self, key: str, reason: str) -> None: ...

    def purge_processed(self, before: dt.datetime, dry_run: bool = False) -> int:
        """Delete the processed copies (`done` moved them) of messages that arrived
        before `before`; how many were (or, `dry_run`, would be) deleted. The
        database holds every such message: the copy is only the mailbox's."""
        ...


@runtime_checkable
class WaitingSource(Protocol):
    """A source that can be told about new mail (IMAP IDLE) instead of polled."""

    def wait(self, timeout: float) -> bool:
        """Block until new mail may be there (True) or `timeout` passes (False)."""
        ...
