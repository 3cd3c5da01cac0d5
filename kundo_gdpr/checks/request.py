"""Checks on what the mail asks: the assertion, the kinds, the subjects, the channels."""

from __future__ import annotations

from kundo_gdpr.checks.base import REJECT, REVIEW, CheckContext, Finding


class Assertion:
    name = "assertion"
    description = "The editor asserts that the person's identity is confirmed."

    def check(self, ctx: CheckContext) -> list[Finding]:
        return [] if ctx.request.assertion else [Finding("missing_assertion", REJECT)]


class Kinds:
    name = "kinds"
    description = "The mail asks to erase or to export (or both)."

    def check(self, ctx: CheckContext) -> list[Finding]:
        return [] if ctx.request.kinds else [Finding("no_kind", REJECT)]


class Subjects:
    name = "subjects"
    description = "The mail names at least one valid data subject address."

    def check(self, ctx: CheckContext) -> list[Finding]:
        findings = []
        if "invalid_subject" in ctx.request.problems:
            findings.append(Finding("invalid_subject", REVIEW))
        if not ctx.request.subjects:
            findings.append(Finding("no_subject", REJECT))
        return findings


class Channels:
    name = "channels"
    description = "The mail says which channels: mail, forum posts, chats."

    def check(self, ctx: CheckContext) -> list[Finding]:
        if not ctx.request.channel_kinds:
            return [Finding("no_channel", REVIEW)]
        if "channels_widened" in ctx.request.problems:
            # "All data" next to named channels reads as all three: an agent confirms.
            return [Finding("channels_widened", REVIEW)]
        return []
