"""Checks on who sent the mail: one readable sender, and proof that it is them."""

from __future__ import annotations

from kundo_gdpr import auth
from kundo_gdpr.checks.base import QUARANTINE, REVIEW, CheckContext, Finding


class OneSender:
    name = "one_sender"
    description = "The mail has exactly one, well-formed sender address."

    def check(self, ctx: CheckContext) -> list[Finding]:
        bad = "bad_sender" in ctx.request.problems or not ctx.request.sender
        return [Finding("bad_sender", QUARANTINE)] if bad else []


class Authenticity:
    name = "authenticity"
    description = "DKIM aligned with From, or a trusted receiver, proves who sent the mail."

    def check(self, ctx: CheckContext) -> list[Finding]:
        request = ctx.request
        domain = (request.sender or "").rpartition("@")[2]
        result = auth.authenticate(request.inbound_mail.raw, domain, ctx.config)
        request.authenticated = result.authenticated
        if result.authenticated or not ctx.config.auth.require:
            return []
        return [Finding("sender_unauthenticated", REVIEW, {"reasons": list(result.reasons)})]


class Answerable:
    name = "answerable"
    description = (
        "Under auth.require, a sender who is neither authenticated nor known to the "
        "desk as an editor gets no reply at all: the mail is kept for the agents."
    )

    def check(self, ctx: CheckContext) -> list[Finding]:
        # A forged From would otherwise aim our rejection mail at anyone.
        request = ctx.request
        if not ctx.config.auth.require or request.authenticated or not request.sender:
            return []
        if ctx.desk.editor(request.sender) is not None:
            return []
        return [Finding("unauthenticated_stranger", QUARANTINE, {"sender": request.sender})]
