"""Stage decide: `needs_review` -> `approved` | `rejected`, and every other
decision on a request, for the web app and the CLI alike.

Reads a request in an open state (locked by `find`); writes its state,
`decided_at`/`decided_by`, one audit event with the deciding actor, and the
reply the decision causes. Policy's own decision (`acknowledge`: the receipt,
and approval under `policy.auto_approve`) is made here too.

Each function works inside the caller's transaction: it changes the request,
records one audit event with the agent as actor, and queues the reply the
change causes, so the caller's commit makes all of it happen or none of it.
A refused action raises `ReviewError` with a stable code that the pages
translate; nothing has changed when it does.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from itertools import islice
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from kundo_gdpr import audit, checks
from kundo_gdpr.config import Config
from kundo_gdpr.desk import open_desk
from kundo_gdpr.models import (
    Export,
    FirstApproval,
    OutboundMail,
    Request,
    RequestSubject,
    utcnow,
)
from kundo_gdpr.models.queue import (
    APPROVED,
    HELD,
    NEEDS_REVIEW,
    OPEN_STATES,
    PARSED,
    QUEUED,
    REJECTED,
    SEND_FAILED,
    SENT,
)
from kundo_gdpr.replies import outbox
from kundo_gdpr.replies.context import reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.replies.render import new_message_id
from kundo_gdpr.stages import run
from kundo_gdpr.stages.findings import run_checks
from kundo_gdpr.stages.parse import add_months
from kundo_gdpr.vocabulary import CHANNELS, KINDS, Kind

# Art. 12(3): "may be extended by two further months".
MAX_EXTENSION_MONTHS = 2
# Corrections change what the checks see, so they are allowed only before a decision,
# and not while still `parsed`: the first check, which sends the receipt, is the worker's.
CORRECTABLE = (NEEDS_REVIEW,)
RESENDABLE = (SENT, SEND_FAILED, HELD)
SAMPLES_PER_CHANNEL = 3
# Name mentions listed on the request page; the count says how many there are in all.
MAX_NAME_MENTIONS = 50


class ReviewError(Exception):
    """An agent's action was refused; `code` keys the message shown to them."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail


class StateError(Exception):
    """An action was asked of a request in a state that does not allow it."""


@dataclass(frozen=True)
class Actor:
    """Who acts: the agent's address (the audit actor) and whether they are an admin."""

    email: str
    is_admin: bool = False


# -- deadlines -------------------------------------------------------------------


def due_date(request: Request) -> dt.datetime:
    """The date the answer is due: the extended one when an agent extended it."""
    return request.deadline_extended_until or request.due_at


def due_column() -> ColumnElement[dt.datetime]:
    """`due_date` as SQL, for filtering and sorting the queue."""
    return func.coalesce(Request.deadline_extended_until, Request.due_at)


def extend_deadline(
    session: Session, config: Config, request: Request, actor: Actor, months: int, reason: str
) -> dt.datetime:
    """Move the deadline to `months` (1 or 2) after the original one and tell the editor.

    `months` counts from the original due date, so extending twice can never
    pass received + 3 months. Art. 12(3) says the editor must be told within
    the first month, so an extension after the original due date is refused.
    """
    reason = reason.strip()
    if not reason:
        raise ReviewError("reason_required")
    if not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise ReviewError("extension_too_long")
    if request.state not in OPEN_STATES:
        raise ReviewError("state")
    if not request.sender:
        raise ReviewError("no_sender")
    if utcnow() > request.due_at:
        raise ReviewError("extension_too_late")
    until = add_months(request.received_at, 1 + months)
    if until <= due_date(request):
        raise ReviewError("extension_not_later")
    request.deadline_extended_until = until
    request.deadline_extension_reason = reason
    audit.record(session, "deadline_extended", actor=actor.email, request=request,
                 until=until.isoformat(), months=months, reason=reason)
    context = reply_context(session, request, reason=reason, extended_until=until)
    queue_reply(session, config, request, "deadline_extended", context)
    return until


# -- decisions --------------------------------------------------------------------


def approval_refusal(
    session: Session, config: Config, request: Request, actor: Actor
) -> str | None:
    """Why this agent may not approve the request now (a ReviewError code), or None.

    The request page asks this before it offers Approve, so an agent is never
    shown a button that can only fail.
    """
    if request.state != NEEDS_REVIEW:
        return "state"
    if Kind.ERASE in request.kinds and config.policy.erase_needs_admin and not actor.is_admin:
        return "admin_only"
    if any(f["code"] in checks.ADMIN_FINDINGS for f in request.findings) and not actor.is_admin:
        return "admin_only_large"  # large_erase: an admin's review whatever the policy
    if any(f["severity"] == checks.REJECT for f in request.findings):
        # A correction can leave a request the checks would reject; approving it
        # would act for someone who is not an editor, or on no subject.
        return "blocking_findings"
    first = first_approval(session, request)
    if first is not None and first.agent_email == actor.email:
        return "second_agent_needed"
    return None


def needs_second_agent(config: Config, request: Request) -> bool:
    return config.policy.erase_needs_second_agent and Kind.ERASE in request.kinds


def first_approval(session: Session, request: Request) -> FirstApproval | None:
    return session.scalar(select(FirstApproval).where(FirstApproval.request_id == request.id))


def erase_total(counts: dict[str, dict[str, dict[str, int]]]) -> int:
    """Items an erase changes, over every subject and channel (name mentions are
    only listed, so they do not count)."""
    return sum(n for by_channel in counts.values() for items in by_channel.values()
               for name, n in items.items() if name != "name_mentions")


def needs_typed_address(config: Config, request: Request, total: int) -> bool:
    return Kind.ERASE in request.kinds and total > config.policy.review_erase_above


def approve(
    session: Session, config: Config, request: Request, actor: Actor, typed: str | None = None
) -> str:
    """Approve after the agent confirmed; returns what happened: "approved", or
    "approved_first" when the four-eyes rule waits for a second agent.

    `typed` is what the agent typed for the subject's address; a large erasure
    (over `policy.review_erase_above` items) needs every subject's address.
    None skips that check (callers that counted nothing: the CLI, tests).
    """
    refusal = approval_refusal(session, config, request, actor)
    if refusal:
        # Both admin refusals keep the one stable code; the page words them apart.
        code = "admin_only" if refusal == "admin_only_large" else refusal
        raise ReviewError(code, ", ".join(f["code"] for f in request.findings
                                             if f["severity"] == checks.REJECT))
    if typed is not None and Kind.ERASE in request.kinds:
        total = erase_total(run.preview(session, config, request))
        if needs_typed_address(config, request, total):
            given = {part.strip().lower() for part in typed.replace(",", " ").split()}
            missing = [s.email for s in request.subjects if s.email.lower() not in given]
            if missing:
                raise ReviewError("typed_address", typed.strip())
    if needs_second_agent(config, request):
        first = first_approval(session, request)
        if first is None:
            session.add(FirstApproval(request_id=request.id, agent_email=actor.email,
                                      at=utcnow()))
            audit.record(session, "approval_first", actor=actor.email, request=request)
            return "approved_first"
        audit.record(session, "approval_second", actor=actor.email, request=request,
                     first=first.agent_email)
        session.delete(first)
    try:
        mark_approved(session, request, actor.email)
    except StateError as exc:
        raise ReviewError("state", str(exc)) from exc
    return "approved"


def withdraw_first_approval(session: Session, request: Request) -> None:
    """A first approval was for the request as it was; a change asks both agents again."""
    first = first_approval(session, request)
    if first is not None:
        session.delete(first)


def reject(
    session: Session, config: Config, request: Request, actor: Actor, reason: str
) -> None:
    """Reject; the reason becomes the text of the rejection reply."""
    reason = reason.strip()
    if not reason:
        raise ReviewError("reason_required")
    if request.state == APPROVED and run.claimed_by_run(session, request):
        # The erase or export has begun: a rejection now would contradict the receipt
        # and leave data half erased; the run finishes and the editor gets its result.
        raise ReviewError("running", f"{request.reference} is being carried out")
    withdraw_first_approval(session, request)
    try:
        mark_rejected(session, config, request, actor.email, reason)
    except StateError as exc:
        raise ReviewError("state", str(exc)) from exc


def policy_state(config: Config) -> str:
    """Where a request that passed every check goes under the policy in force now."""
    return APPROVED if config.policy.auto_approve else NEEDS_REVIEW


def acknowledge(session: Session, config: Config, request: Request, now: dt.datetime) -> None:
    """Queue the receipt of a request that goes on (to review, or approved by
    policy) and record policy's approval; after the checks, or after the
    editor's confirmation when that was asked for."""
    queue_reply(session, config, request, "receipt", reply_context(session, request),
                [run.proof_file(session, config, request, "receipt")])
    if request.state == APPROVED:
        request.decided_at = now
        request.decided_by = "policy:auto_approve"
        audit.record(session, "approved", request=request, actor="policy:auto_approve")


def mark_approved(session: Session, request: Request, actor: str) -> None:
    if request.state != NEEDS_REVIEW:
        raise StateError(f"{request.reference} is {request.state}, not {NEEDS_REVIEW}")
    if not request.channels or not request.subjects or not request.kinds:
        raise StateError(f"{request.reference} has no channels, subjects or kinds to act on")
    request.state = APPROVED
    request.decided_at = utcnow()
    request.decided_by = actor
    audit.record(session, "approved", actor=actor, request=request)


def mark_rejected(
    session: Session, config: Config, request: Request, actor: str, reason: str
) -> None:
    if request.state not in (NEEDS_REVIEW, PARSED, APPROVED):
        raise StateError(f"{request.reference} is {request.state} and cannot be rejected")
    request.state = REJECTED
    request.decided_at = utcnow()
    request.decided_by = actor
    audit.record(session, "rejected", actor=actor, request=request, reason=reason)
    if request.sender:
        context = reply_context(session, request, reason=reason)
        queue_reply(session, config, request, "rejected", context)


# -- assignee --------------------------------------------------------------------


def take(session: Session, request: Request, actor: Actor) -> None:
    """The agent takes the request: it shows under "mine" and as theirs to others."""
    if request.state not in OPEN_STATES:
        raise ReviewError("state")
    before = request.assignee
    request.assignee = actor.email
    audit.record(session, "taken", actor=actor.email, request=request, before=before or "")


def release(session: Session, request: Request, actor: Actor) -> None:
    """Give the request back to everyone; only its assignee or an admin may."""
    if request.assignee not in (actor.email, None) and not actor.is_admin:
        raise ReviewError("not_assignee")
    request.assignee = None
    audit.record(session, "released", actor=actor.email, request=request)


# -- corrections ---------------------------------------------------------------------


@dataclass(frozen=True)
class Correction:
    subjects: tuple[str, ...]
    kinds: tuple[str, ...]
    channels: tuple[str, ...]


def parse_correction(subjects: str, kinds: Iterable[str], channels: Iterable[str]) -> Correction:
    """The corrected fields from a form: addresses one per line or comma-separated."""
    addresses: list[str] = []
    for part in subjects.replace(",", "\n").replace(";", "\n").split():
        try:
            address = validate_email(part, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise ReviewError("invalid_address", part) from exc
        if address not in addresses:
            addresses.append(address)
    wanted_kinds = tuple(k for k in KINDS if k in set(kinds))
    wanted_channels = tuple(c for c in CHANNELS if c in set(channels))
    if set(kinds) - set(KINDS) or set(channels) - set(CHANNELS):
        raise ReviewError("invalid_choice")
    return Correction(tuple(addresses), wanted_kinds, wanted_channels)


def correct(
    session: Session, config: Config, request: Request, actor: Actor, fix: Correction
) -> None:
    """Replace the parsed subjects, kinds and channels, then run the checks again.

    The parse as the mail gave it stays in the audit trail (the `parsed`
    event); this adds a `corrected` event with what was and what is now.
    """
    if request.state not in CORRECTABLE:
        raise ReviewError("state")
    before = _fields(request)
    withdraw_first_approval(session, request)
    request.kinds = list(fix.kinds)
    request.channel_kinds = list(fix.channels)
    if list(fix.subjects) != before["subjects"]:
        request.subjects.clear()
        session.flush()  # the unique (request, email) must not see old and new at once
        request.subjects.extend(RequestSubject(email=s) for s in fix.subjects)
        # The agent typed valid addresses; the parser's complaint no longer holds.
        request.problems = [p for p in request.problems if p != "invalid_subject"]
    # The agent chose the channels, so "all data" widening them needs no more review.
    request.problems = [p for p in request.problems if p != "channels_widened"]
    audit.record(session, "corrected", actor=actor.email, request=request,
                 before=before, after=_fields(request))
    recheck(session, config, request, actor)


def recheck(session: Session, config: Config, request: Request, actor: Actor) -> None:
    """Run the checks again. No reply: the editor already has the receipt, and a
    rejection is the agent's call, made with a reason."""
    if request.state not in CORRECTABLE:
        raise ReviewError("state")
    findings = run_checks(session, config, request)
    request.state = NEEDS_REVIEW
    audit.record(session, "rechecked", actor=actor.email, request=request,
                 findings=[f.as_dict() for f in findings])


def _fields(request: Request) -> dict[str, list[str]]:
    return {"subjects": [s.email for s in request.subjects], "kinds": list(request.kinds),
            "channels": list(request.channel_kinds)}


# -- replies and exports -----------------------------------------------------------


def resend(
    session: Session, config: Config, request: Request, actor: Actor, reply_id: int
) -> OutboundMail:
    """Send a reply again. Returns the outbox row that will go out.

    A reply that never left (held over the hourly limit, or failed) is
    re-queued as it is, under its own Message-ID: it is still the same,
    undelivered mail. A reply that was sent is copied under a new
    Message-ID, because receivers drop a message whose Message-ID they have
    seen (Gmail does), so an identical copy of a delivered-but-lost reply
    would never show up; the copy is its own row with its own delivery
    state. Body, subject, threading headers and attachments are the
    original bytes either way.
    """
    old = session.get(OutboundMail, reply_id)
    if old is None or old.request_id != request.id:
        raise ReviewError("no_such_reply")
    if request.minimised_at is not None:  # the body is gone (records.retention)
        raise ReviewError("minimised")
    if old.state not in RESENDABLE:
        raise ReviewError("reply_pending")
    if old.state in (HELD, SEND_FAILED):
        outbox.release(session, old, actor.email)
        return old
    message_id = new_message_id(f"{request.reference}.{old.purpose}.resend",
                                config.service.message_id_domain)
    msg = email.message_from_bytes(old.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    msg.replace_header("Message-ID", message_id)
    msg.replace_header("Date", format_datetime(utcnow()))
    row = OutboundMail(request_id=request.id, purpose=old.purpose, message_id=message_id,
                       to_addr=old.to_addr, subject=old.subject, raw=msg.as_bytes(),
                       state=QUEUED, next_attempt_at=utcnow())
    session.add(row)
    audit.record(session, "reply_resent", actor=actor.email, request=request,
                 purpose=old.purpose, to=old.to_addr, message_id=message_id,
                 resend_of=old.message_id)
    return row


def kept_export(session: Session, request: Request, export_id: int) -> Export:
    """The request's export file while it is kept: not expired, not deleted."""
    export = session.get(Export, export_id)
    if export is None or export.request_id != request.id:
        raise ReviewError("no_such_export")
    if not export.kept(utcnow()):
        raise ReviewError("export_gone")
    return export


def may_download(config: Config, actor: Actor) -> bool:
    """`policy.export_download`: "admins" (default) or "agents"."""
    return actor.is_admin or config.policy.export_download == "agents"


def record_download(session: Session, request: Request, export: Export, actor: Actor) -> None:
    export.last_download_at = utcnow()
    audit.record(session, "export_downloaded", actor=actor.email, request=request,
                 export_id=export.id, filename=export.filename)


# -- preview -------------------------------------------------------------------------


def preview(session: Session, config: Config, request: Request) -> dict[str, Any]:
    """What running the request would do, per subject, reading only: for an erasure
    the counts per channel and item kind and the others' texts that name the
    person (listed, never changed); for an export the rows per channel; and a
    few sample items."""
    desk = open_desk(config.desk.store, session)
    channels = run.covered_channels(session, desk, request)
    erase = run.preview(session, config, request) if Kind.ERASE in request.kinds else {}
    found: dict[str, Any] = {}
    for subject in (s.email for s in request.subjects):
        entry: dict[str, Any] = {"samples": _samples(desk.export(subject, channels))}
        if Kind.ERASE in request.kinds:
            entry[Kind.ERASE] = erase.get(subject, {})
            entry["names"] = [m for m in desk.mentions(subject, channels, config.erase)
                              if m.found == "name"][:MAX_NAME_MENTIONS]
        if Kind.EXPORT in request.kinds:
            entry[Kind.EXPORT] = {sheet.kind: _count_rows(sheet.rows)
                               for sheet in desk.export(subject, channels)}
        found[subject] = entry
    return found


def _count_rows(rows: Iterable[Any]) -> int:
    return sum(1 for _ in rows)


def _samples(sheets: Iterable[Any]) -> list[dict[str, Any]]:
    found = []
    for sheet in sheets:
        rows = sheet.rows
        for row in islice(rows, SAMPLES_PER_CHANNEL):
            found.append({"channel": sheet.kind, **_sample(sheet.columns, row)})
        if hasattr(rows, "close"):
            rows.close()  # stop the streaming query early
    return found


def _sample(columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    values = dict(zip(columns, row, strict=False))
    title = values.get("title") or values.get("conversation_subject") or values.get("channel")
    body = " ".join(str(values.get("body") or "").split())
    return {"date": values.get("date"), "title": str(title or ""),
            "text": body[:120] + ("…" if len(body) > 120 else "")}


def find(session: Session, reference: str) -> Request:
    """The request with this reference, locked for this transaction so that an
    agent's action and a worker (or another agent) cannot both change it;
    ReviewError('no_such_request') if none."""
    request = session.scalar(
        select(Request).where(Request.reference == reference).with_for_update()
    )
    if request is None:
        raise ReviewError("no_such_request", reference)
    return request
