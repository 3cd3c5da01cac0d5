"""Stage check: `parsed` -> `approved` | `needs_review` | `unconfirmed` |
`rejected` | `quarantined` | `ignored`.

Reads a request in state `parsed`; runs the checks, stores their findings,
and commits the verdict with a `checked` audit event and the reply it causes:
the receipt (via `decide.acknowledge`), the rejection, or the confirmation
request (via the confirm stage when `policy.confirm_by_mail` holds).
"""

from __future__ import annotations

from sqlalchemy import select
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

STATE_FOR = {
    checks.IGNORE: IGNORED,
    checks.QUARANTINE: QUARANTINED,
    checks.REJECT: REJECTED,
    checks.REVIEW: NEEDS_REVIEW,
}


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
    for finding in findings:  # the editor's reply with a code confirms another request
        if finding.code == "confirmation_reply":
            confirm.confirm_by_mail(session, config, int(finding.args["confirmation"]))
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
        decide.acknowledge(session, config, request, utcnow())
