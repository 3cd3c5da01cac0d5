"""Stage check: `parsed` -> `approved` | `needs_review` | `unconfirmed` |
`rejected` | `quarantined` | `ignored`.

Reads a request in state `parsed`; runs the checks, stores their findings,
and commits the verdict with a `checked` audit event and the reply it causes:
the receipt (via `decide.acknowledge`), the rejection, or the confirmation
request (via the confirm stage when `policy.confirm_by_mail` holds).
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, checks
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.models import Request, utcnow
from kundo_gdpr.models.queue import (
    APPROVED,
    IGNORED,
    NEEDS_REVIEW,
    PARSED,
    QUARANTINED,
    REJECTED,
)
from kundo_gdpr.replies.context import reply_context
from kundo_gdpr.replies.outbox import queue_reply
from kundo_gdpr.stages import confirm, decide
from kundo_gdpr.stages.findings import run_checks
from kundo_gdpr.stages.unit import Owner, Stage, quarantine

STATE_FOR = {
    checks.IGNORE: IGNORED,
    checks.QUARANTINE: QUARANTINED,
    checks.REJECT: REJECTED,
    checks.REVIEW: NEEDS_REVIEW,
}


def check_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Check the next parsed request and queue its receipt or rejection."""
    with factory.begin() as session:
        request = claim(session, _parsed())
        if request is None:
            return False
        check_request(session, config, request)
    return True


def _parsed() -> Select[Request]:
    return select(Request).where(Request.state == PARSED).order_by(Request.id)


def claim_next(session: Session) -> int | None:
    request = claim(session, _parsed())
    return request.id if request else None


def handle(factory: sessionmaker[Session], config: Config, request_id: int) -> None:
    with factory.begin() as session:
        request = claim(session, _parsed().where(Request.id == request_id))
        if request is not None:  # else another worker has checked it
            check_request(session, config, request)


def owner(session: Session, request_id: int) -> Owner:
    return session.get(Request, request_id), None


def give_up(session: Session, config: Config, request_id: int, reason: str) -> None:
    """The checks kept failing on this request: quarantined, for an agent to look at."""
    request = claim(session, _parsed().where(Request.id == request_id))
    if request is not None:
        quarantine(session, request, "check", reason)


STAGE = Stage("check", claim_next, handle, owner, give_up)


def check_request(session: Session, config: Config, request: Request) -> None:
    findings = run_checks(session, config, request)
    for finding in findings:  # the editor's reply with a code confirms another request
        if finding.code == "confirmation_reply":
            confirm.confirm_by_mail(session, config, int(finding.args["confirmation"]))
    outcome = checks.verdict(findings)
    # Passing every check, the policy in force now decides (decide.policy_state);
    # a request that waits for its editor's confirmation is decided when confirmed.
    request.state = STATE_FOR.get(outcome) or decide.policy_state(config)
    audit.record(
        session,
        "checked",
        request=request,
        state=request.state,
        findings=[f.as_dict() for f in findings],
    )
    if confirm.wanted(config, request):  # policy.confirm_by_mail: the editor confirms first
        confirm.ask(session, config, request, forced_review=outcome == checks.REVIEW)
        return
    if request.state == REJECTED:
        queue_reply(session, config, request, "rejected", reply_context(session, request))
    elif request.state in (NEEDS_REVIEW, APPROVED):
        decide.acknowledge(session, config, request, utcnow())
