"""/metrics: the deployment's figures, read from the database at each scrape.

Every worker writes to the same database, so one scrape of any web process
covers them all. Labels are states, stage names, channel and item kinds: never
an address, a reference or any text from a mail.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kundo_gdpr.models import OutboundMail, Request, StageFailure, StageStat
from kundo_gdpr.models.queue import (
    BUNDLED,
    DONE,
    HELD,
    OPEN_STATES,
    QUEUED,
    REQUEST_STATES,
    SEND_FAILED,
    SENT,
)
from kundo_gdpr.operations.stats import FETCH
from kundo_gdpr.vocabulary import KINDS

PREFIX = "kundo_gdpr"
OUTBOX_STATES = (QUEUED, HELD, BUNDLED, SENT, SEND_FAILED)
# Open requests by whole days left until due (an extended deadline counts).
DUE_BUCKETS = (("overdue", -10**9, -1), ("0-2", 0, 2), ("3-7", 3, 7), ("8-14", 8, 14),
               ("15-30", 15, 30), ("31+", 31, 10**9))
# Channel and item kinds come from the desk's code; anything else is not a label.
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DAY = 86400.0


def collect(session: Session, now: dt.datetime) -> list[Metric]:
    """Every metric family, as of `now`."""
    return [
        *_requests(session, now),
        *_stages(session, now),
        _outbox(session),
        *_actions(session),
    ]


def render(families: Iterable[Metric]) -> bytes:
    """Prometheus text exposition of `families`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families)))
    return generate_latest(registry)


@dataclass(eq=False)  # the registry keys collectors by identity
class _Fixed(Collector):
    families: list[Metric]

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def _requests(session: Session, now: dt.datetime) -> list[Metric]:
    by_state = GaugeMetricFamily(f"{PREFIX}_requests", "Requests by state.", labels=["state"])
    counts = dict(session.execute(
        select(Request.state, func.count()).group_by(Request.state)).all())
    for state in REQUEST_STATES:
        by_state.add_metric([state], counts.get(state, 0))
    due = func.coalesce(Request.deadline_extended_until, Request.due_at)
    open_rows = session.execute(
        select(due, Request.received_at).where(Request.state.in_(OPEN_STATES))).all()
    buckets = {name: 0 for name, _, _ in DUE_BUCKETS}
    for due_at, _ in open_rows:
        buckets[_bucket(due_at, now)] += 1
    by_due = GaugeMetricFamily(
        f"{PREFIX}_open_requests_by_due", "Open requests by whole days left until due.",
        labels=["days_to_due"])
    for name, _, _ in DUE_BUCKETS:
        by_due.add_metric([name], buckets[name])
    overdue = GaugeMetricFamily(
        f"{PREFIX}_overdue_requests", "Open requests past their due date.",
        value=sum(1 for due_at, _ in open_rows if due_at < now))
    oldest = min((received for _, received in open_rows), default=None)
    oldest_age = GaugeMetricFamily(
        f"{PREFIX}_oldest_open_request_age_seconds",
        "Age of the oldest open request (0 when none is open).",
        value=(now - oldest).total_seconds() if oldest else 0.0)
    return [by_state, by_due, overdue, oldest_age]


def _bucket(due_at: dt.datetime, now: dt.datetime) -> str:
    if due_at < now:
        return "overdue"
    days = int((due_at - now).total_seconds() // DAY)
    return next(name for name, low, high in DUE_BUCKETS if low <= days <= high)


def _stages(session: Session, now: dt.datetime) -> list[Metric]:
    passes = CounterMetricFamily(f"{PREFIX}_stage_passes", "Stage passes by all workers.",
                                 labels=["stage"])
    units = CounterMetricFamily(f"{PREFIX}_stage_units", "Units of work done by each stage.",
                                labels=["stage"])
    failures = CounterMetricFamily(f"{PREFIX}_stage_failures", "Stage passes that failed.",
                                   labels=["stage"])
    seconds = SummaryMetricFamily(f"{PREFIX}_stage_seconds", "Time spent in stage passes.",
                                  labels=["stage"])
    fetch_age = GaugeMetricFamily(
        f"{PREFIX}_last_fetch_age_seconds",
        "Seconds since a worker last fetched successfully (NaN: never).",
        value=float("nan"))
    for row in session.scalars(select(StageStat).order_by(StageStat.stage)):
        passes.add_metric([row.stage], row.passes)
        units.add_metric([row.stage], row.units)
        failures.add_metric([row.stage], row.failures)
        seconds.add_metric([row.stage], count_value=row.passes, sum_value=row.seconds)
        if row.stage == FETCH and row.last_ok_at is not None:
            fetch_age = GaugeMetricFamily(
                fetch_age.name, fetch_age.documentation,
                value=(now - row.last_ok_at).total_seconds())
    recent = GaugeMetricFamily(
        f"{PREFIX}_stage_failures_last_hour", "Failed stage passes in the last hour.",
        value=failures_since(session, now - dt.timedelta(hours=1)))
    return [passes, units, failures, seconds, fetch_age, recent]


def failures_since(session: Session, since: dt.datetime) -> int:
    return session.scalar(
        select(func.count()).select_from(StageFailure).where(StageFailure.at >= since)) or 0


def _outbox(session: Session) -> Metric:
    family = GaugeMetricFamily(f"{PREFIX}_outbox", "Replies by state.", labels=["state"])
    counts = dict(session.execute(
        select(OutboundMail.state, func.count()).group_by(OutboundMail.state)).all())
    for state in OUTBOX_STATES:
        family.add_metric([state], counts.get(state, 0))
    return family


def _actions(session: Session) -> list[Metric]:
    """Items erased and exported, and how long done requests took from approval."""
    items = CounterMetricFamily(
        f"{PREFIX}_items", "Items erased or exported by done requests.",
        labels=["action", "channel", "item"])
    took = SummaryMetricFamily(
        f"{PREFIX}_action_seconds", "Done requests' time from approval to done.",
        labels=["action"])
    totals: dict[tuple[str, str, str], int] = {}
    durations: dict[str, list[float]] = {action: [] for action in KINDS}
    rows = session.execute(select(Request.kinds, Request.result, Request.decided_at,
                                  Request.done_at).where(Request.state == DONE))
    for kinds, result, decided_at, done_at in rows:
        for action in KINDS:
            if action not in kinds:
                continue
            if decided_at is not None and done_at is not None:
                durations[action].append((done_at - decided_at).total_seconds())
            for per_subject in ((result or {}).get(action) or {}).values():
                _add_counts(totals, action, per_subject)
    for (kind, channel, item), count in sorted(totals.items()):
        items.add_metric([kind, channel, item], count)
    for action in KINDS:
        took.add_metric([action], count_value=len(durations[action]),
                        sum_value=sum(durations[action]))
    return [items, took]


def _add_counts(totals: dict[tuple[str, str, str], int], action: str, counts: object) -> None:
    """Add one subject's counts: {channel: {item: n}} (erase) or {channel: n} (export,
    counted as item "items")."""
    if not isinstance(counts, dict):
        return
    for channel, per_item in counts.items():
        if isinstance(per_item, int):
            per_item = {"items": per_item}
        if not (isinstance(per_item, dict) and _KIND.match(str(channel))):
            continue
        for item, count in per_item.items():
            if _KIND.match(str(item)) and isinstance(count, int):
                key = (action, str(channel), str(item))
                totals[key] = totals.get(key, 0) + count
