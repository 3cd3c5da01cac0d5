"""Checks on the mail itself: our own replies, machine mail, replies that confirm."""

from __future__ import annotations

from email.parser import BytesHeaderParser

from sqlalchemy.orm import object_session

from kundo_gdpr.checks.base import IGNORE, INFO, CheckContext, Finding
from kundo_gdpr.models import Request, utcnow
from kundo_gdpr.models.confirmations import pending_for_code
from kundo_gdpr.replies.outbox import OWN_HEADER


class OwnMail:
    name = "own_mail"
    description = "Our own replies, fed back into the inbox, are stored but never answered."

    def check(self, ctx: CheckContext) -> list[Finding]:
        own = is_own_mail(ctx.request, ctx.config.service.message_id_domain)
        return [Finding("own_reply", IGNORE)] if own else []


def is_own_mail(request: Request, message_id_domain: str) -> bool:
    """The mail's own Message-ID has our domain, or it carries our marker header.

    In-Reply-To and References to us do not count: editors answer our replies.
    """
    domain = (request.message_id or "").strip().strip("<>").rpartition("@")[2]
    if domain.lower() == message_id_domain.lower():
        return True
    headers = BytesHeaderParser().parsebytes(request.inbound_mail.raw)
    return headers.get(OWN_HEADER) is not None


class MachineMail:
    name = "machine_mail"
    description = "Bounces, auto-replies and list mail are stored but never answered."

    def check(self, ctx: CheckContext) -> list[Finding]:
        return [Finding("auto_reply", IGNORE)] if "auto_reply" in ctx.request.problems else []


class ConfirmationReply:
    name = "confirmation_reply"
    description = "An editor's reply carrying the code that confirms an earlier request."

    def check(self, ctx: CheckContext) -> list[Finding]:
        request, config = ctx.request, ctx.config
        session = object_session(request)
        if not config.policy.confirm_by_mail or session is None or not request.sender:
            return []
        # Only an authenticated mail from the stored address may confirm.
        if config.auth.require and not request.authenticated:
            return []
        if ctx.text is None:
            return []
        # Pure: the confirm stage confirms what this finds (`stages.confirm.confirm_by_mail`).
        row = pending_for_code(session, request.sender, ctx.text, utcnow())
        if row is None:
            return []
        confirmed = session.get(Request, row.request_id)
        args = {"reference": confirmed.reference if confirmed else "", "confirmation": str(row.id)}
        if request.kinds:  # also a request of its own: it goes on through the checks
            return [Finding("confirmation_reply", INFO, args)]
        # A plain reply did its job; it is stored, never answered or acted on itself.
        return [Finding("confirmation_reply", IGNORE, args)]
