"""Erase a request's subjects, one committed transaction per batch.

Each batch's deletes and the progress row that counts them commit together,
so after a crash the progress row holds exactly what is gone, and a re-run
goes on from there: nothing is counted twice, nothing is left behind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.db import flush_stats
from kundo_gdpr.desk import ChannelRef, Counts, EraseStep, Strategy, open_desk
from kundo_gdpr.desk import purge as desk_purge
from kundo_gdpr.desk.mentions import LISTED
from kundo_gdpr.desk.sql import add, zero_counts
from kundo_gdpr.models import utcnow
from kundo_gdpr.models.queue import EraseProgress

# Called after each committed batch with the number of batches so far.
AfterBatch = Callable[[int], None]


@dataclasses.dataclass(frozen=True)
class Erased:
    counts: Counts
    mentions: list[dict[str, Any]]


def erase_subject(
    factory: sessionmaker[Session],
    store: str,
    strategy: Strategy,
    request_id: int,
    subject: str,
    channels: Sequence[ChannelRef],
    after_batch: AfterBatch | None = None,
    purge: bool = True,
) -> Erased:
    """Erase one subject of a request to the end; safe to call again after a crash.

    Then (`purge`) the erased bytes are taken out of what the database keeps
    beside its rows (WAL, full-text index, dead tuples: `desk.purge`).
    """
    with factory() as session:
        progress = _start(session, store, strategy, request_id, subject, channels)
        erased_now = progress.done_at is None
        if progress.done_at is None:
            desk = open_desk(store, session)
            steps = desk.erase(subject, channels, strategy, progress.names, dict(progress.cursor))
            for step in steps:
                _record(progress, step)
                if step.last:
                    progress.done_at = utcnow()
                flush_stats(session)
                session.commit()  # the batch and its counts, together
                if after_batch is not None:
                    after_batch(progress.batches)
                if step.last:
                    break
                progress = _lock(session, progress.id)
            if progress.done_at is None:  # no step, or a store that cannot tell the last
                progress.done_at = utcnow()
                session.commit()
        engine = session.get_bind()
    if purge and erased_now and isinstance(engine, Engine):
        desk_purge(store, engine)
    return Erased(progress.counts, progress.mentions)


def result(session: Session, request_id: int, subject: str) -> Erased | None:
    """What a finished erase of this subject removed and listed."""
    progress = session.scalar(select(EraseProgress).where(
        EraseProgress.request_id == request_id, EraseProgress.subject == subject))
    if progress is None or progress.done_at is None:
        return None
    return Erased(progress.counts, progress.mentions)


def started(session: Session, request_id: int) -> bool:
    """Whether any subject of the request has begun erasing."""
    return session.scalar(select(EraseProgress.id).where(
        EraseProgress.request_id == request_id).limit(1)) is not None


def _start(
    session: Session, store: str, strategy: Strategy, request_id: int,
    subject: str, channels: Sequence[ChannelRef],
) -> EraseProgress:
    """This subject's progress row, locked; a new one is committed with the first batch.

    A crash before that commit leaves nothing behind, and the re-run starts
    afresh: the same as a crash before the first batch.
    """
    found = session.scalar(select(EraseProgress.id).where(
        EraseProgress.request_id == request_id, EraseProgress.subject == subject))
    if found is not None:
        return _lock(session, found)
    # Names are taken before the first batch deletes the items that hold them.
    names = open_desk(store, session).stored_names(subject, channels)
    progress = EraseProgress(
        request_id=request_id, subject=subject, names=names,
        counts=zero_counts(channels, strategy), mentions=[], cursor={}, batches=0,
    )
    session.add(progress)
    session.flush()
    return progress


def _lock(session: Session, progress_id: int) -> EraseProgress:
    # Row lock on PostgreSQL: a second worker on the same request waits its
    # turn per batch instead of counting the same rows (SQLite: one writer).
    stmt = (select(EraseProgress).where(EraseProgress.id == progress_id)
            .with_for_update().execution_options(populate_existing=True))
    return session.scalars(stmt).one()


def _record(progress: EraseProgress, step: EraseStep) -> None:
    # New objects, not in-place changes: JSON columns are saved when reassigned.
    progress.counts = add({k: dict(v) for k, v in progress.counts.items()}, step.counts)
    room = LISTED - len(progress.mentions)
    if step.mentions and room > 0:
        progress.mentions = [*progress.mentions,
                             *(dataclasses.asdict(m) for m in step.mentions[:room])]
    if step.cursor:
        progress.cursor = {**progress.cursor, **step.cursor}
    progress.batches += 1
