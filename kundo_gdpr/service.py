"""The loops: fetch, process, deliver. Used by `run`, `serve` and by tests.

Each `*_once` method claims units of work until none is left and returns how
many it did; tests call them directly, `run` calls them in a loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import confirm, db, pipeline
from kundo_gdpr.actions import links
from kundo_gdpr.config import Config
from kundo_gdpr.intake import store
from kundo_gdpr.intake.maildir import MaildirSource
from kundo_gdpr.intake.source import MailSource, WaitingSource
from kundo_gdpr.replies.outbox import deliver_one, release_due
from kundo_gdpr.replies.transports import Transport, make_transport

log = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 1.0


def _maildir(config: Config) -> MailSource:
    return MaildirSource(config.path(config.intake.maildir.path))


def _imap(config: Config) -> MailSource:
    from kundo_gdpr.intake.imap import ImapSource

    return ImapSource(config.intake.imap, config.secret(config.intake.imap.password_env))


SOURCES: dict[str, Callable[[Config], MailSource]] = {"maildir": _maildir, "imap": _imap}


def make_source(config: Config) -> MailSource:
    return SOURCES[config.intake.source](config)


@dataclass
class Worker:
    config: Config
    engine: Engine
    source: MailSource
    transport: Transport
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        # A source that backs off (IMAP) must not sleep through a SIGTERM.
        interrupt_with = getattr(self.source, "interrupt_with", None)
        if interrupt_with is not None:
            interrupt_with(self.stop)

    @classmethod
    def from_config(cls, config: Config) -> Worker:
        engine = db.make_engine(config.database_url())
        return cls(config, engine, make_source(config), make_transport(config))

    @property
    def factory(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)

    def fetch_once(self) -> int:
        return store.fetch(
            self.factory,
            self.source,
            max_bytes=self.config.intake.max_message_bytes,
            should_stop=self.stop.is_set,
        )

    def process_once(self) -> int:
        done = 0
        for step in (store.parse_one, pipeline.check_one, confirm.expire_one, pipeline.run_one):
            while not self.stop.is_set() and self._guarded(step):
                done += 1
        return done

    def deliver_once(self) -> int:
        # Released replies count as work only once sent, so an idle pass stays idle.
        release_due(self.factory, self.config)
        done = 0
        while not self.stop.is_set() and deliver_one(self.factory, self.config, self.transport):
            done += 1
        return done

    def run_once(self) -> int:
        """One pass of every loop; returns the units of work done."""
        return self.fetch_once() + self.process_once() + self.deliver_once()

    def run_forever(self) -> None:
        while not self.stop.is_set():
            try:
                links.sweep(self.factory)  # export files whose link has expired
                worked = self.run_once()
            except Exception:  # a database outage must not end the service
                log.exception("pass failed; retrying")
                worked = 0
            if not worked:
                self.idle(self.config.service.poll_seconds)

    def idle(self, seconds: float) -> None:
        """Wait for new mail, the poll interval, or a stop request.

        A source that can wait (IMAP IDLE) wakes us early; it waits in short
        slices so a SIGTERM is honoured within about a second.
        """
        if not isinstance(self.source, WaitingSource):
            self.stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.source.wait(min(left, STOP_CHECK_SECONDS)):
                return

    def _guarded(self, step: Callable[[sessionmaker[Session], Config], bool]) -> bool:
        return step(self.factory, self.config)
