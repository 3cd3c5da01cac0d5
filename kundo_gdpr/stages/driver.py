"""The driver: calls the stages in turn. Used by `run`, `serve` and by tests.

Each `*_once` method claims units of work until none is left and returns how
many it did; tests call them directly, `run` calls them in a loop.
"""

from __future__ import annotations

import functools
import imaplib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, PendingRollbackError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, db
from kundo_gdpr.config import Config
from kundo_gdpr.intake.maildir import MaildirSource
from kundo_gdpr.intake.source import MailSource, WaitingSource
from kundo_gdpr.models import Event, InboundMail, Request
from kundo_gdpr.operations import stats
from kundo_gdpr.operations.locks import FetchLock, fetch_lock_for
from kundo_gdpr.replies.transports import Transport, make_transport
from kundo_gdpr.stages import check, deliver, fetch, parse, run, schedules, sweep, undo
from kundo_gdpr.stages.unit import Stage

log = logging.getLogger(__name__)

# The row-at-a-time stages before the runs, in order; their names are the ones
# /metrics uses. `run` follows, one request at a time, with deliver before each.
PROCESS_STAGES: tuple[Stage, ...] = (parse.STAGE, check.STAGE, sweep.STAGE)
# Steps that claim and finish their own units (retention runs), after the runs.
LATER_STEPS: tuple[tuple[str, Callable[[sessionmaker[Session], Config], bool]], ...] = (
    ("schedules", schedules.run_one),  # approved retention runs
)
ATTEMPT_FAILED = "attempt_failed"

STOP_CHECK_SECONDS = 1.0
# Retention (minimising requests, purging the mailbox's processed copies) runs at
# most this often: its periods are days, and the mailbox purge is an IMAP round trip.
RETENTION_SECONDS = 3600.0


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
    # time.monotonic() of the last retention pass (None: not yet in this process).
    retention_at: float | None = None

    def __post_init__(self) -> None:
        # A source that backs off (IMAP) must not sleep through a SIGTERM.
        interrupt_with = getattr(self.source, "interrupt_with", None)
        if interrupt_with is not None:
            interrupt_with(self.stop)
        self._deliver_stage = deliver.stage(self.transport)

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
        done = sum(self._timed(stage.name, functools.partial(self._drain, stage))
                   for stage in PROCESS_STAGES)
        # One run at a time, and the replies queued so far go out before each:
        # a long erase or export never delays another request's receipt.
        while not self.stop.is_set():
            done += self.deliver_once()
            ran = self._timed(run.STAGE.name, functools.partial(self._drain, run.STAGE, 1))
            if not ran:
                break
            done += ran
        for name, step in LATER_STEPS:
            done += self._timed(name, functools.partial(self._drain_steps, step))
        return done

    def _drain_steps(self, step: Callable[[sessionmaker[Session], Config], bool]) -> int:
        done = 0
        while not self.stop.is_set() and step(self.factory, self.config):
            done += 1
        return done

    def deliver_once(self) -> int:
        return self._timed("deliver", self._deliver)

    def _deliver(self) -> int:
        # Released replies count as work only once sent, so an idle pass stays idle.
        deliver.release(self.factory, self.config)
        return self._drain(self._deliver_stage)

    def _drain(self, stage: Stage, limit: int = 0) -> int:
        """Handle `stage`'s units until none is left (or `limit`); returns how many
        were handled, failed attempts included.

        This is the one place that catches broadly. A unit that raises is rolled
        back, its attempt is counted (an `attempt_failed` audit event), and after
        `service.max_attempts` the stage gives it up (`failed` or `quarantined`,
        with the exception as the reason); then the loop goes on. A database that
        cannot be reached is nobody's fault: that propagates and run_forever backs off.
        """
        done = 0
        handled: set[int] = set()
        while not self.stop.is_set() and not (limit and done >= limit):
            with self.factory.begin() as session:
                unit = stage.claim_next(session)
            if unit is None:
                break
            if unit in handled:  # handled, yet still waiting for this stage: do not spin
                log.warning("%s: unit %s is still pending after being handled", stage.name, unit)
                break
            started = time.monotonic()
            before = self._state(stage, unit)
            try:
                stage.handle(self.factory, self.config, unit)
            except Exception as exc:  # the one broad catch: this unit failed, not the loop
                if outage(exc):
                    raise  # the database's, not the unit's: run_forever backs off
                if not self._failed(stage, unit, exc):
                    break
            else:
                handled.add(unit)
            self._log_change(stage, unit, before, started)
            done += 1
        return done

    def _state(self, stage: Stage, unit: int) -> tuple[str, str]:
        with self.factory() as session:
            return stage.state_of(session, unit)

    def _log_change(
        self, stage: Stage, unit: int, before: tuple[str, str], started: float
    ) -> None:
        after = self._state(stage, unit)
        if after[1] != before[1]:
            log.info("state change", extra={
                "reference": after[0], "stage": stage.name, "from_state": before[1],
                "to_state": after[1], "seconds": round(time.monotonic() - started, 3)})

    def _failed(self, stage: Stage, unit: int, exc: Exception) -> bool:
        """Count a failed attempt, and give the unit up after the last one.

        Returns False when even that could not be recorded: the stage then
        waits for the next pass instead of spinning on the unit.
        """
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        limit = self.config.service.max_attempts
        try:
            with self.factory.begin() as session:
                request, mail = stage.owner(session, unit)
                attempt = _attempts(session, stage.name, unit, request, mail) + 1
                audit.record(session, ATTEMPT_FAILED, request=request, mail=mail,
                             stage=stage.name, unit=unit, attempt=attempt, error=reason)
                log.warning("%s: %s failed (attempt %d of %d): %s", stage.name,
                            _name(request, mail, unit), attempt, limit, reason,
                            exc_info=exc)
                if attempt >= limit or (request is None and mail is None):
                    stage.give_up(session, self.config, unit, reason)
        except Exception as exc:  # the failure path itself failed: leave the unit for now
            if outage(exc):
                raise
            log.exception("%s: could not record the failure of unit %s", stage.name, unit)
            return False
        return True

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
        self.retention()
        return self.fetch_once() + self.process_once() + self.deliver_once()

    def retention(self) -> None:
        """Requests past `[retention] request_days` minimised, and (by the fetching
        worker) the mailbox's processed copies past `mailbox_days` deleted: at the
        first pass, then once an hour."""
        now = time.monotonic()
        if self.retention_at is not None and now - self.retention_at < RETENTION_SECONDS:
            return
        self.retention_at = now
        sweep.minimise_due(self.factory, self.config)
        if not self.fetching():
            return
        try:
            sweep.purge_mailbox(self.source, self.config)
        except (OSError, imaplib.IMAP4.error) as exc:  # the mailbox's trouble: next hour
            log.warning("could not purge the mailbox's processed copies: %s", exc)

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



def _attempts(
    session: Session, stage: str, unit: int, request: Request | None, mail: InboundMail | None
) -> int:
    """How many attempts of `stage` on `unit` failed so far (from the audit trail)."""
    if request is not None:
        mine = Event.request_id == request.id
    elif mail is not None:
        mine = Event.inbound_mail_id == mail.id
    else:
        return 0
    details = session.scalars(select(Event.detail).where(mine, Event.action == ATTEMPT_FAILED))
    return sum(1 for d in details if d.get("stage") == stage and d.get("unit") == unit)


def _name(request: Request | None, mail: InboundMail | None, unit: int) -> str:
    if request is not None:
        return request.reference or f"request#{request.id}"
    return f"mail#{mail.id}" if mail is not None else f"#{unit}"


def outage(exc: BaseException) -> bool:
    """Whether `exc` says the database is unreachable or went away, rather than
    that this unit is bad: never counted against a row."""
    return (isinstance(exc, (*fetch.DB_UNAVAILABLE, DisconnectionError, PendingRollbackError))
            or (isinstance(exc, DBAPIError) and exc.connection_invalidated))
