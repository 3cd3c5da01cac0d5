"""The driver: calls the stages in turn. Used by `run`, `serve` and by tests.

Each `*_once` method claims units of work until none is left and returns how
many it did; tests call them directly, `run` calls them in a loop.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config
from kundo_gdpr.intake.maildir import MaildirSource
from kundo_gdpr.intake.source import MailSource, WaitingSource
from kundo_gdpr.operations import stats
from kundo_gdpr.operations.locks import FetchLock, fetch_lock_for
from kundo_gdpr.replies.transports import Transport, make_transport
from kundo_gdpr.stages import check, deliver, fetch, parse, run, schedules, sweep, undo

log = logging.getLogger(__name__)

# The stages between fetch and deliver, by the names /metrics uses.
PROCESS_STEPS: tuple[tuple[str, Callable[[sessionmaker[Session], Config], bool]], ...] = (
    ("parse", parse.parse_one),
    ("check", check.check_one),
    ("expire_confirmations", sweep.expire_one),
    ("run", run.run_one),
    ("schedules", schedules.run_one),  # approved retention runs
)

STOP_CHECK_SECONDS = 1.0


def _maildir(config: Config) -> MailSource:
    return MaildirSource(config.path(config.intake.maildir.path))


def _imap(config: Config) -> MailSource:
    from kundo_gdpr.intake.imap import ImapSource

    return ImapSource(config.intake.imap, config.secret(config.intake.imap.password_env))


SOURCES: dict[str, Callable[[Config], MailSource]] = {"maildir": _maildir, "imap": _imap}


def make_source(config: Config) -> MailSource:
    return SOURCES[config.intake.source](config)


def backoff(failures: int, poll_seconds: float) -> float:
    """Seconds to wait after `failures` failed passes in a row: 0.5, 1, 2, ... up to
    the poll interval (at least 5 s), so a restarted database is found again soon."""
    return float(min(0.5 * 2 ** (failures - 1), max(poll_seconds, 5.0)))


@dataclass
class Worker:
    config: Config
    engine: Engine
    source: MailSource
    transport: Transport
    stop: threading.Event = field(default_factory=threading.Event)
    # Several workers on PostgreSQL: only the holder of this lock fetches. None:
    # always fetch (one worker; tests that drive a worker by hand).
    fetch_lock: FetchLock | None = None

    def __post_init__(self) -> None:
        # A source that backs off (IMAP) must not sleep through a SIGTERM.
        interrupt_with = getattr(self.source, "interrupt_with", None)
        if interrupt_with is not None:
            interrupt_with(self.stop)

    @classmethod
    def from_config(cls, config: Config) -> Worker:
        engine = db.make_engine(config.database_url())
        return cls(config, engine, make_source(config), make_transport(config))

    @classmethod
    def service(cls, config: Config) -> Worker:
        """The worker of `run` and `serve`: fetches only while it holds the fetch lock."""
        worker = cls.from_config(config)
        # Tried at least once per poll interval: a dead fetcher's successor takes over
        # within service.poll_seconds.
        worker.fetch_lock = fetch_lock_for(worker.engine, min(1.0, config.service.poll_seconds))
        return worker

    @property
    def factory(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)

    def fetch_once(self) -> int:
        if not self.fetching():
            return 0
        return self._timed(stats.FETCH, lambda: fetch.fetch(
            self.factory,
            self.source,
            max_bytes=self.config.intake.max_message_bytes,
            should_stop=self.stop.is_set,
        ))

    def process_once(self) -> int:
        return sum(self._timed(name, functools.partial(self._drain, step))
                   for name, step in PROCESS_STEPS)

    def _drain(self, step: Callable[[sessionmaker[Session], Config], bool]) -> int:
        done = 0
        while not self.stop.is_set() and self._guarded(step):
            done += 1
        return done

    def deliver_once(self) -> int:
        return self._timed("deliver", self._deliver)

    def _deliver(self) -> int:
        return deliver.deliver_all(self.factory, self.config, self.transport, self.stop.is_set)

    def _timed(self, stage: str, work: Callable[[], int]) -> int:
        """Run one stage pass and add it to the shared stage counters (/metrics)."""
        started = time.monotonic()
        try:
            done = work()
        except Exception as exc:  # recorded here, handled by run_forever's catch
            self._record(stage, 0, started, f"{type(exc).__name__}: {exc}")
            raise
        self._record(stage, done, started, None)
        return done

    def _record(self, stage: str, units: int, started: float, error: str | None) -> None:
        try:
            stats.record(self.factory, stage, units=units,
                         seconds=time.monotonic() - started, error=error)
        except fetch.DB_UNAVAILABLE:
            log.warning("could not record the %s pass: the database is unavailable", stage)

    def run_once(self) -> int:
        """One pass of every loop; returns the units of work done."""
        sweep.sweep_exports(self.factory, self.config)  # expired exports, `run --once` too
        undo.close_due(self.factory)  # safety windows past their end: erasures final
        schedules.evaluate_due(self.factory, self.config)  # retention rules due: previews
        return self.fetch_once() + self.process_once() + self.deliver_once()

    def fetching(self) -> bool:
        """Whether this worker is the one that fetches (it may take over now)."""
        return self.fetch_lock is None or self.fetch_lock.held()

    def run_forever(self) -> None:
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    worked = self.run_once()
                    failures = 0
                except Exception:  # a database outage must not end the service
                    failures += 1
                    log.exception("pass failed (%d in a row); retrying", failures)
                    # Pooled connections to a restarted database are all dead.
                    self.engine.dispose()
                    self.stop.wait(backoff(failures, self.config.service.poll_seconds))
                    continue
                if not worked:
                    self.idle(self.config.service.poll_seconds)
        finally:
            if self.fetch_lock is not None:
                self.fetch_lock.release()

    def idle(self, seconds: float) -> None:
        """Wait for new mail, the poll interval, or a stop request.

        A source that can wait (IMAP IDLE) wakes us early; it waits in short
        slices so a SIGTERM is honoured within about a second.
        """
        if not isinstance(self.source, WaitingSource) or not self.fetching():
            self.stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.source.wait(min(left, STOP_CHECK_SECONDS)):
                return

    def _guarded(self, step: Callable[[sessionmaker[Session], Config], bool]) -> bool:
        return step(self.factory, self.config)
