"""Stage run: `approved` -> `done` (or `failed`).

Reads a request in state `approved`; writes its export files and erases
batch by batch (each step commits, so a crash resumes where it stopped),
then one transaction records `result`, state `done`, the `done` audit event
and the done reply with the export. A failure leaves it `failed`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.actions import erase, holds, package, vault
from kundo_gdpr.actions.export import ExportHeader
from kundo_gdpr.actions.links import discard as discard_exports
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim, unit_locks
from kundo_gdpr.desk import ChannelRef, Counts, DeskStore, open_desk
from kundo_gdpr.models import Request, utcnow
from kundo_gdpr.models.queue import APPROVED, DONE, FAILED
from kundo_gdpr.records import ledger, proof
from kundo_gdpr.replies.context import organization_name, reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.replies.render import FileAttachment
from kundo_gdpr.stages.fetch import DB_UNAVAILABLE

log = logging.getLogger(__name__)

# Approved requests looked at per claim; more than the number of workers.
RUN_CANDIDATES = 64


class StateError(Exception):
    """The run found the request in a state it cannot finish from."""


# -- run ---------------------------------------------------------------------------


def run_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Erase and/or export for the next approved request, then queue the done reply.

    Export files and each erase batch commit as they go (`prepare_request`);
    a last transaction records the result and queues the reply. After a crash
    the request is still approved, and the next pass resumes where it stopped.
    """
    engine = factory.kw["bind"]
    with unit_locks(engine) as try_lock:
        claimed = _claim_run(factory, try_lock)
        if claimed is None:
            return False
        _run_claimed(factory, config, *claimed)
    return True


def _claim_run(
    factory: sessionmaker[Session], try_lock: Callable[[int], bool]
) -> tuple[int, str | None] | None:
    """An approved request no other worker is running, locked for the whole run
    (its export and erase batches commit separately, so a row lock is not enough)."""
    with factory() as session:
        candidates = session.execute(select(Request.id, Request.reference).where(
            Request.state == APPROVED).order_by(Request.id).limit(RUN_CANDIDATES)).all()
    for request_id, reference in candidates:
        if not try_lock(request_id):
            continue
        with factory() as session:  # finished by another worker since we looked?
            if session.scalar(select(Request.state).where(Request.id == request_id)) == APPROVED:
                return request_id, reference
    return None


def _run_claimed(
    factory: sessionmaker[Session], config: Config, request_id: int, reference: str | None
) -> None:
    try:
        prepare_request(factory, config, request_id)
        with factory.begin() as session:
            request = claim(session, select(Request).where(
                Request.id == request_id, Request.state == APPROVED))
            if request is not None:  # else another worker has finished it
                run_request(session, config, request)
    except DB_UNAVAILABLE:
        raise  # not the request's fault: it stays approved and is run again
    except Exception as exc:  # the one broad catch of this loop: record, go on
        log.exception("request %s failed", reference)
        with factory.begin() as session:
            failed = session.get(Request, request_id)
            if failed is not None and failed.state == APPROVED:
                failed.state = FAILED
                error = f"{type(exc).__name__}: {exc}"
                audit.record(session, "failed", request=failed, error=error)


def prepare_request(
    factory: sessionmaker[Session], config: Config, request_id: int,
    after_batch: erase.AfterBatch | None = None,
) -> None:
    """Write the export files, then erase batch by batch; each step commits."""
    with factory.begin() as session:
        request = session.scalars(
            select(Request).where(Request.id == request_id).with_for_update()).one()
        desk = open_desk(config.desk.store, session)
        channels = covered_channels(session, desk, request)
        subjects, kinds = [s.email for s in request.subjects], list(request.kinds)
        kept = _held(session, request, subjects, channels) if "erase" in kinds else {}
        if "erase" in kinds and not erase.started(session, request_id):
            # Written before the first batch: a restore after it can be replayed.
            # Never with a held channel: a replay must not take what a hold keeps.
            held_any = {i for ids in kept.values() for i in ids}
            ledger.record(config, request, [c for c in channels if c.id not in held_any],
                          config.erase)
        # Export before erase: a request for both must not export an empty desk.
        if "export" in kinds and "export" not in (request.result or {}):
            request.result = {**(request.result or {}),
                              "export": _export(session, config, desk, request, channels)}
    if "erase" in kinds:
        # The safety window: each batch's before images go to the request's vault.
        watched = vault.watched(factory, request_id, config.erase.undo_hours)
        for subject in subjects:
            erasable = [c for c in channels if c.id not in kept[subject]]
            erase.erase_subject(watched, config.desk.store, config.erase, request_id, subject,
                                erasable, after_batch)
        with factory.begin() as session:  # no earlier export of theirs outlives the erase
            for subject in subjects:
                discard_exports(session, config, subject, request_id)


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
    if "export" in request.kinds:
        attachments, links = package.deliverables(session, config, request)
    if "erase" in request.kinds:
        erased = {s.email: erase.result(session, request.id, s.email) for s in request.subjects}
        if any(e is None for e in erased.values()):
            raise StateError(f"{request.reference}: the erase has not finished")
        result["mentions"] = {s: e.mentions for s, e in erased.items() if e}
        result["erase"] = {s: e.counts for s, e in erased.items() if e}
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
    named = desk.organization_channels(request.organization_id, ("mail", "forum", "chat"))
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
