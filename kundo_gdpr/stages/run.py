"""Stage run: `approved` -> `done` (or `failed`).

Reads a request in state `approved`; writes its export files and erases
batch by batch (each step commits, so a crash resumes where it stopped),
then one transaction records `result`, state `done`, the `done` audit event
and the done reply with the export. The driver counts a failed attempt; after
`service.max_attempts` the request is `failed` with the reason (`give_up`).
The state is read again after every erase batch, and a request that left
`approved` (by whatever path) stops the run there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.actions import erase, holds, package, vault
from kundo_gdpr.actions.export import ExportHeader
from kundo_gdpr.actions.links import discard as discard_exports
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim, unit_locks
from kundo_gdpr.desk import ChannelRef, Counts, DeskStore, open_desk
from kundo_gdpr.models import Event, Request, utcnow
from kundo_gdpr.models.queue import APPROVED, DONE
from kundo_gdpr.records import ledger, proof
from kundo_gdpr.replies.context import organization_name, reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.replies.render import FileAttachment
from kundo_gdpr.stages.unit import Owner, Stage, fail
from kundo_gdpr.vocabulary import CHANNELS, Kind

log = logging.getLogger(__name__)

# Approved requests looked at per claim; more than the number of workers.
RUN_CANDIDATES = 64
# The audit event that marks a request as claimed by a run.
RUN_STARTED = "run_started"


class StateError(Exception):
    """The run found the request in a state it cannot finish from."""


class RunStopped(Exception):
    """The request left `approved` while its run was going on: stop between batches."""


def _approved() -> Select[Request]:
    return select(Request).where(Request.state == APPROVED).order_by(Request.id)


def run_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Erase and/or export for the next approved request, then queue the done reply."""
    with factory.begin() as session:
        request_id = claim_next(session)
    if request_id is None:
        return False
    handle(factory, config, request_id)
    return True


def claim_next(session: Session) -> int | None:
    """The first approved request no other worker is running (its unit lock free)."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with unit_locks(engine) as try_lock:
        claimed = _claim_run(session, try_lock)
    return claimed


def _claim_run(session: Session, try_lock: Callable[[int], bool]) -> int | None:
    candidates = session.scalars(select(Request.id).where(
        Request.state == APPROVED).order_by(Request.id).limit(RUN_CANDIDATES)).all()
    return next((request_id for request_id in candidates if try_lock(request_id)), None)


def handle(
    factory: sessionmaker[Session], config: Config, request_id: int,
    after_batch: erase.AfterBatch | None = None,
) -> None:
    """Run one approved request to `done`, holding its unit lock for the whole
    run (its export and erase batches commit separately, so a row lock is not
    enough); a request another worker is running is left to it.

    Export files and each erase batch commit as they go (`prepare_request`);
    a last transaction records the result and queues the reply. After a crash
    the request is still approved, and the next pass resumes where it stopped.
    """
    engine = factory.kw["bind"]
    with unit_locks(engine) as try_lock:
        if try_lock(request_id):
            _run_claimed(factory, config, request_id, after_batch)


def _run_claimed(
    factory: sessionmaker[Session], config: Config, request_id: int,
    after_batch: erase.AfterBatch | None,
) -> None:
    try:
        if not prepare_request(factory, config, request_id, after_batch):
            return
    except RunStopped as stopped:
        log.warning("request %s: run stopped: %s", request_id, stopped)
        return
    with factory.begin() as session:
        request = claim(session, _approved().where(Request.id == request_id))
        if request is not None:  # else another worker has finished it, or it was stopped
            run_request(session, config, request)


def owner(session: Session, request_id: int) -> Owner:
    return session.get(Request, request_id), None


def give_up(session: Session, config: Config, request_id: int, reason: str) -> None:
    """The run failed every time: `failed`, with the reason, for an agent to look at."""
    request = claim(session, _approved().where(Request.id == request_id))
    if request is not None:
        fail(session, request, "run", reason)


STAGE = Stage("run", claim_next, handle, owner, give_up)


def claimed_by_run(session: Session, request: Request) -> bool:
    """Whether a run has started on the request (its `run_started` event exists)."""
    return session.scalar(select(Event.id).where(
        Event.request_id == request.id, Event.action == RUN_STARTED).limit(1)) is not None


def prepare_request(
    factory: sessionmaker[Session], config: Config, request_id: int,
    after_batch: erase.AfterBatch | None = None,
) -> bool:
    """Write the export files, then erase batch by batch; each step commits.

    False when the request is no longer approved (nothing was done).
    """
    with factory.begin() as session:
        request = claim(session, _approved().where(Request.id == request_id))
        if request is None:
            return False
        if not claimed_by_run(session, request):
            # From here on the request cannot be rejected (stages.decide).
            audit.record(session, RUN_STARTED, request=request)
        desk = open_desk(config.desk.store, session)
        channels = covered_channels(session, desk, request)
        subjects, kinds = [s.email for s in request.subjects], list(request.kinds)
        kept = _held(session, request, subjects, channels) if Kind.ERASE in kinds else {}
        if Kind.ERASE in kinds and not erase.started(session, request_id):
            # Written before the first batch: a restore after it can be replayed.
            # Never with a held channel: a replay must not take what a hold keeps.
            held_any = {i for ids in kept.values() for i in ids}
            ledger.record(config, request, [c for c in channels if c.id not in held_any],
                          config.erase)
        # Export before erase: a request for both must not export an empty desk.
        if Kind.EXPORT in kinds and Kind.EXPORT not in (request.result or {}):
            request.result = {**(request.result or {}),
                              Kind.EXPORT: _export(session, config, desk, request, channels)}
    if Kind.ERASE in kinds:
        # The safety window: each batch's before images go to the request's vault.
        watched = vault.watched(factory, request_id, config.erase.undo_hours)
        check = _still_approved(factory, request_id, after_batch)
        for subject in subjects:
            erasable = [c for c in channels if c.id not in kept[subject]]
            erase.erase_subject(watched, config.desk.store, config.erase, request_id, subject,
                                erasable, check)
        with factory.begin() as session:  # no earlier export of theirs outlives the erase
            for subject in subjects:
                discard_exports(session, config, subject, request_id)
    return True


def _still_approved(
    factory: sessionmaker[Session], request_id: int, then: erase.AfterBatch | None
) -> erase.AfterBatch:
    def after_batch(batches: int) -> None:
        if then is not None:
            then(batches)
        with factory() as session:
            state = session.scalar(select(Request.state).where(Request.id == request_id))
        if state != APPROVED:
            raise RunStopped(f"the request is {state} after {batches} batch(es)")

    return after_batch


def _held(
    session: Session, request: Request, subjects: list[str], channels: list[ChannelRef],
) -> dict[str, set[int]]:
    """The channels held per subject (legal holds), decided once and kept in the
    result: a resumed run skips the same channels even if a hold ended since."""
    result = dict(request.result or {})
    if "held" not in result:
        result["held"] = {s: [h.as_dict() for h in holds.held(
            session, request.organization_id, s, channels)] for s in subjects}
        request.result = result
    return {s: {h["channel_id"] for h in result["held"].get(s, [])} for s in subjects}


def _kept_counts(session: Session, config: Config, request: Request,
                 held: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each held channel with the subject's items in it (what the erase kept)."""
    desk = open_desk(config.desk.store, session)
    by_id = {c.id: c for c in covered_channels(session, desk, request)}
    return {subject: [{**h, "counts": desk.count(subject, [by_id[h["channel_id"]]],
                                                 config.erase).get(h["kind"], {})}
                      for h in entries if h["channel_id"] in by_id]
            for subject, entries in held.items()}


def run_request(session: Session, config: Config, request: Request) -> None:
    """Record what the prepared run did, and queue the done reply with the export."""
    result: dict[str, Any] = dict(request.result or {})
    attachments: list[FileAttachment] = []
    links: list[package.Link] = []
    if Kind.EXPORT in request.kinds:
        attachments, links = package.deliverables(session, config, request)
    if Kind.ERASE in request.kinds:
        erased = {s.email: erase.result(session, request.id, s.email) for s in request.subjects}
        if any(e is None for e in erased.values()):
            raise StateError(f"{request.reference}: the erase has not finished")
        result["mentions"] = {s: e.mentions for s, e in erased.items() if e}
        result[Kind.ERASE] = {s: e.counts for s, e in erased.items() if e}
        result["held"] = _kept_counts(session, config, request, result.get("held", {}))
    request.result = result
    request.state = DONE
    request.done_at = utcnow()
    audit.record(session, "done", request=request, result=result)
    context = reply_context(session, request, links=[dataclasses.asdict(k) for k in links],
                            undo_until=vault.open_until(session, request.id))
    session.flush()  # the export rows the proof lists
    attachments.append(proof_file(session, config, request, "done"))
    queue_reply(session, config, request, "done", context, attachments)


def proof_file(session: Session, config: Config, request: Request, stage: str) -> FileAttachment:
    """The signed proof.json a receipt or done reply carries (records/proof.py)."""
    return FileAttachment(proof.FILENAME, proof.CONTENT_TYPE,
                          proof.make(session, config, request, stage))


def covered_channels(session: Session, desk: DeskStore, request: Request) -> list[ChannelRef]:
    if request.organization_id is None:
        return []
    ids = {c.channel_id for c in request.channels}
    named = desk.organization_channels(request.organization_id, CHANNELS)
    return [c for c in named if c.id in ids]


def preview(session: Session, config: Config, request: Request) -> dict[str, Counts]:
    """What erasing the request would remove, per subject, without changing anything.

    The same shape and numbers as `result["erase"]` after the run.
    """
    desk = open_desk(config.desk.store, session)
    channels = covered_channels(session, desk, request)
    return {s.email: desk.count(s.email, channels, config.erase) for s in request.subjects}


def _export(
    session: Session,
    config: Config,
    desk: DeskStore,
    request: Request,
    channels: Sequence[ChannelRef],
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    controller = organization_name(session, request)
    folder = config.path(config.export.path)
    for index, subject in enumerate(request.subjects, start=1):
        header = ExportHeader(
            request.reference or "", controller, subject.email, utcnow(), request.language
        )
        stem = f"{request.reference}-{index}"
        counts[subject.email], paths = package.write_files(folder, stem, header, desk, channels)
        package.record(session, config, request, subject.email, paths)
    return counts
