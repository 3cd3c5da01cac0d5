"""Running the checks on a request and storing what they found on it.

Not a stage of its own: the check stage calls it for a new request and the
decide module for an agent's re-check, so it sits below both.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from kundo_gdpr import checks
from kundo_gdpr.config import Config
from kundo_gdpr.desk import open_desk
from kundo_gdpr.models import Request, RequestChannel


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
