"""Request checks. Each check is a small object with a name and one method;
the pipeline is a tuple of them; `run_checks` is the short driver.

A check returns findings: a stable code, a severity that decides what
happens to the request, and arguments for the reply and the agents' UI.
"""

from __future__ import annotations

from collections.abc import Sequence

from kundo_gdpr.checks.authority import Editor, organizations_named
from kundo_gdpr.checks.base import (
    IGNORE,
    INFO,
    QUARANTINE,
    REJECT,
    REVIEW,
    SEVERITIES,
    Check,
    CheckContext,
    Finding,
)
from kundo_gdpr.checks.doubts import (
    ADMIN_FINDINGS,
    KindDoubt,
    LargeErase,
    SubjectIsStaff,
    SubjectNotFound,
)
from kundo_gdpr.checks.mail import ConfirmationReply, MachineMail, OwnMail, is_own_mail
from kundo_gdpr.checks.request import Assertion, Channels, Kinds, Subjects
from kundo_gdpr.checks.sender import Answerable, Authenticity, OneSender

PIPELINE: tuple[Check, ...] = (
    OwnMail(),
    MachineMail(),
    OneSender(),
    Authenticity(),
    ConfirmationReply(),
    Assertion(),
    Kinds(),
    Subjects(),
    Channels(),
    Editor(),
    Answerable(),
    KindDoubt(),
    SubjectIsStaff(),
    SubjectNotFound(),
    LargeErase(),
)


def run_checks(ctx: CheckContext, pipeline: Sequence[Check] = PIPELINE) -> list[Finding]:
    """Every check's findings. Stops early only for mail that must not be answered."""
    findings: list[Finding] = []
    for check in pipeline:
        findings += check.check(ctx)
        if any(f.severity in (IGNORE, QUARANTINE) for f in findings):
            break
    return findings


def verdict(findings: Sequence[Finding]) -> str:
    """The strongest severity among the findings ('info' when there are none)."""
    present = {f.severity for f in findings}
    return next((s for s in SEVERITIES if s in present), INFO)


__all__ = [
    "ADMIN_FINDINGS",
    "IGNORE",
    "INFO",
    "PIPELINE",
    "QUARANTINE",
    "REJECT",
    "REVIEW",
    "SEVERITIES",
    "Check",
    "CheckContext",
    "Finding",
    "is_own_mail",
    "organizations_named",
    "run_checks",
    "verdict",
]
