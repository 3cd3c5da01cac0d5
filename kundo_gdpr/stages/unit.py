"""The contract every row-at-a-time stage offers the driver.

`claim_next` finds and locks the next unit in the caller's transaction and
returns its id; `handle` does the work for that id in transactions of its
own (re-claiming the row, so a unit another worker took is skipped);
`owner` says which request or mail a unit belongs to (for the audit trail);
`give_up` moves a unit that failed `service.max_attempts` times to its end
state (`failed` or `quarantined`) with the reason; `describe` names the unit
and its state for the log line of each state change. A test can call each
directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.models import InboundMail, Request
from kundo_gdpr.models.queue import FAILED, QUARANTINED

Owner = tuple[Request | None, InboundMail | None]


@dataclass(frozen=True)
class Stage:
    name: str
    claim_next: Callable[[Session], int | None]
    handle: Callable[[sessionmaker[Session], Config, int], None]
    owner: Callable[[Session, int], Owner]
    give_up: Callable[[Session, Config, int, str], None]
    describe: Callable[[Session, int], tuple[str, str]] | None = None

    def state_of(self, session: Session, unit: int) -> tuple[str, str]:
        """(what the unit is called in the log, its state now)."""
        if self.describe is not None:
            return self.describe(session, unit)
        request, mail = self.owner(session, unit)
        if request is not None:
            return request.reference or f"request#{request.id}", request.state
        if mail is not None:
            made = mail.request
            return (made.reference or f"mail#{mail.id}") if made else f"mail#{mail.id}", mail.state
        return f"#{unit}", "gone"


# The finding that shows an agent why a request stopped (queue, request page, CLI).
STAGE_FAILED = "stage_failed"


def quarantine(session: Session, request: Request, stage: str, reason: str) -> None:
    """Stop a request that made `stage` fail every time: `quarantined`, with why."""
    mark_stopped(session, request, QUARANTINED, stage, reason)
    audit.record(session, "quarantined", request=request, stage=stage, reason=reason)


def fail(session: Session, request: Request, stage: str, reason: str) -> None:
    """A run that failed every time: `failed`, with why."""
    mark_stopped(session, request, FAILED, stage, reason)
    audit.record(session, "failed", request=request, stage=stage, error=reason)


def mark_stopped(session: Session, request: Request, state: str, stage: str, reason: str) -> None:
    """The request's state and the finding that says which stage gave it up and why
    (`reason_of`: the agents' queue, the request page, `requests show`)."""
    request.state = state
    request.problems = sorted({*request.problems, STAGE_FAILED})
    request.findings = [*request.findings, {"code": STAGE_FAILED, "severity": "quarantine",
                                            "args": {"stage": stage, "reason": reason}}]


def reason_of(request: Request) -> str | None:
    """Why the request stopped, if a stage gave up on it: "stage: Error: message"."""
    for finding in reversed(request.findings):
        if finding.get("code") == STAGE_FAILED:
            args = finding.get("args", {})
            return f"{args.get('stage')}: {args.get('reason')}"
    return None
