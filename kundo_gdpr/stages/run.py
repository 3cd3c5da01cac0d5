"""The request stages after parsing: check, decide, run. Each is one transaction.

`check_one` and `run_one` claim one request and move it to its next state
together with its audit events and the reply it causes; a crash anywhere
leaves the request in the state the next run resumes from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, checks, confirm
from kundo_gdpr.actions import erase, package
from kundo_gdpr.actions.export import ExportHeader
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.desk import ChannelRef, Counts, DeskStore, open_desk
from kundo_gdpr.models import Organization, Request, RequestChannel, utcnow
from kundo_gdpr.models.queue import (
    APPROVED,
    DONE,
    FAILED,
    IGNORED,
    NEEDS_REVIEW,
    PARSED,
    QUARANTINED,
    REJECTED,
)
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.replies.render import FileAttachment

log = logging.getLogger(__name__)

STATE_FOR = {
    checks.IGNORE: IGNORED,
    checks.QUARANTINE: QUARANTINED,
    checks.REJECT: REJECTED,
    checks.REVIEW: NEEDS_REVIEW,
}


class StateError(Exception):
    """An action was asked of a request in a state that does not allow it."""


# -- check ---------------------------------------------------------------------


def check_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Check the next parsed request and queue its receipt or rejection."""
    with factory.begin() as session:
        request = claim(
            session, select(Request).where(Request.state == PARSED).order_by(Request.id)
        )
        if request is None:
            return False
        check_request(session, config, request)
    return True


def check_request(session: Session, config: Config, request: Request) -> None:
    findings = run_checks(session, config, request)
    outcome = checks.verdict(findings)
    if outcome in STATE_FOR:
        request.state = STATE_FOR[outcome]
    elif config.policy.auto_approve:
        request.state = APPROVED
    else:
        request.state = NEEDS_REVIEW
    audit.record(
        session,
        "checked",
        request=request,
        state=request.state,
        findings=[f.as_dict() for f in findings],
    )
    if confirm.wanted(config, request):  # policy.confirm_by_mail: the editor confirms first
        confirm.ask(session, config, request)
        return
    if request.state == REJECTED:
        queue_reply(session, config, request, "rejected", reply_context(session, request))
    elif request.state in (NEEDS_REVIEW, APPROVED):
        acknowledge(session, config, request, utcnow())


def acknowledge(session: Session, config: Config, request: Request, now: dt.datetime) -> None:
    """Queue the receipt of a request that goes on (to review, or approved by
    policy) and record policy's approval; after the checks, or after the
    editor's confirmation when that was asked for."""
    queue_reply(session, config, request, "receipt", reply_context(session, request))
    if request.state == APPROVED:
        request.decided_at = now
        request.decided_by = "policy:auto_approve"
        audit.record(session, "approved", request=request, actor="policy:auto_approve")


def run_checks(session: Session, config: Config, request: Request) -> list[checks.Finding]:
    """Run every check on the request and store what they found on it."""
    ctx = checks.CheckContext(request, open_desk(config.desk.store, session), config)
    findings = checks.run_checks(ctx)
    _apply_findings(session, request, ctx, findings)
    return findings


def _apply_findings(
    session: Session, request: Request, ctx: checks.CheckContext, findings: list[checks.Finding]
) -> None:
    request.findings = [f.as_dict() for f in findings]
    request.problems = sorted({f.code for f in findings if f.severity != checks.INFO})
    request.organization_id = ctx.organization_id
    if ctx.editor is not None:
        request.editor_id = ctx.editor.id
        # Replies go to the address the desk has on file for the editor.
        request.sender = ctx.editor.email.lower()
    request.channels.clear()
    session.flush()
    request.channels.extend(RequestChannel(channel_id=c.id) for c in ctx.covered)


# -- decide ----------------------------------------------------------------------


def find(session: Session, reference: str) -> Request:
    request = session.scalar(select(Request).where(Request.reference == reference))
    if request is None:
        raise LookupError(reference)
    return request


def approve(session: Session, request: Request, actor: str) -> None:
    if request.state != NEEDS_REVIEW:
        raise StateError(f"{request.reference} is {request.state}, not {NEEDS_REVIEW}")
    if not request.channels or not request.subjects or not request.kinds:
        raise StateError(f"{request.reference} has no channels, subjects or kinds to act on")
    request.state = APPROVED
    request.decided_at = utcnow()
    request.decided_by = actor
    audit.record(session, "approved", actor=actor, request=request)


def reject(session: Session, config: Config, request: Request, actor: str, reason: str) -> None:
    if request.state not in (NEEDS_REVIEW, PARSED, APPROVED):
        raise StateError(f"{request.reference} is {request.state} and cannot be rejected")
    request.state = REJECTED
    request.decided_at = utcnow()
    request.decided_by = actor
    audit.record(session, "rejected", actor=actor, request=request, reason=reason)
    if request.sender:
        context = reply_context(session, request, reason=reason)
        queue_reply(session, config, request, "rejected", context)


# -- run ---------------------------------------------------------------------------


def run_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Erase and/or export for the next approved request, then queue the done reply.

    Export files and each erase batch commit as they go (`prepare_request`);
    a last transaction records the result and queues the reply. After a crash
    the request is still approved, and the next pass resumes where it stopped.
    """
    with factory.begin() as session:
        request = claim(
            session, select(Request).where(Request.state == APPROVED).order_by(Request.id)
        )
        if request is None:
            return False
        request_id, reference = request.id, request.reference
    try:
        prepare_request(factory, config, request_id)
        with factory.begin() as session:
            request = claim(session, select(Request).where(
                Request.id == request_id, Request.state == APPROVED))
            if request is not None:  # else another worker has finished it
                run_request(session, config, request)
    except Exception as exc:  # the one broad catch of this loop: record, go on
        log.exception("request %s failed", reference)
        with factory.begin() as session:
            failed = session.get(Request, request_id)
            if failed is not None and failed.state == APPROVED:
                failed.state = FAILED
                error = f"{type(exc).__name__}: {exc}"
                audit.record(session, "failed", request=failed, error=error)
    return True


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
        # Export before erase: a request for both must not export an empty desk.
        if "export" in kinds and "export" not in (request.result or {}):
            request.result = {**(request.result or {}),
                              "export": _export(session, config, desk, request, channels)}
    if "erase" in kinds:
        for subject in subjects:
            erase.erase_subject(factory, config.desk.store, config.erase, request_id, subject,
                                channels, after_batch)


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
    request.result = result
    request.state = DONE
    request.done_at = utcnow()
    audit.record(session, "done", request=request, result=result)
    context = reply_context(session, request, links=[dataclasses.asdict(k) for k in links])
    queue_reply(session, config, request, "done", context, attachments)


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
    controller = _organization_name(session, request)
    folder = config.path(config.export.path)
    for index, subject in enumerate(request.subjects, start=1):
        header = ExportHeader(
            request.reference or "", controller, subject.email, utcnow(), request.language
        )
        stem = f"{request.reference}-{index}"
        counts[subject.email], paths = package.write_files(folder, stem, header, desk, channels)
        package.record(session, config, request, subject.email, paths)
    return counts


def _organization_name(session: Session, request: Request) -> str:
    org = session.get(Organization, request.organization_id) if request.organization_id else None
    return org.name if org else ""


# -- replies -------------------------------------------------------------------------


def reply_context(session: Session, request: Request, **extra: Any) -> dict[str, Any]:
    """What every reply template may use."""
    return {
        "reference": request.reference,
        "organization": _organization_name(session, request),
        "subjects": [s.email for s in request.subjects],
        "kinds": list(request.kinds),
        "channel_kinds": list(request.channel_kinds),
        "findings": list(request.findings),
        "problems": [f for f in request.findings if f["severity"] != checks.INFO],
        "not_covered": [f["args"] for f in request.findings if f["code"] == "channel_not_covered"],
        "result": request.result or {},
        "received_at": request.received_at,
        "due_at": request.due_at,
        "reason": None,
        **extra,
    }
