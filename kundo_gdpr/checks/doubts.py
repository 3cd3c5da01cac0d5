"""Doubt is a finding: readings that could widen an erase or send data to the
wrong place stop auto-approval and show the agent the words behind them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from kundo_gdpr.checks.base import INFO, REVIEW, CheckContext, Finding
from kundo_gdpr.intake import phrases
from kundo_gdpr.models import Agent
from kundo_gdpr.vocabulary import Kind

# Findings only an admin agent may approve past.
ADMIN_FINDINGS = frozenset({"large_erase"})


class KindDoubt:
    name = "kind_doubt"
    description = (
        "A negation or limitation near a kind word, or both kinds in one mail: an agent "
        "confirms what is asked. An erasure is never auto-approved with it."
    )

    def check(self, ctx: CheckContext) -> list[Finding]:
        parsed = ctx.parsed
        if parsed is None or list(parsed.kinds) != list(ctx.request.kinds):
            return []  # an agent has corrected the kinds: the doubt is answered
        words = [d.words for d in parsed.doubts if d.code == "kind_doubt"]
        return [Finding("kind_doubt", REVIEW, {"words": words})] if words else []


class SubjectIsStaff:
    name = "subject_is_staff"
    description = (
        "A subject is the sender, an editor, an agent, a role address or at the "
        "controller's or the desk's own domain."
    )

    def check(self, ctx: CheckContext) -> list[Finding]:
        named = {d.subject: d.words for d in ctx.parsed.doubts if d.subject} if ctx.parsed else {}
        findings = []
        for subject in (s.email for s in ctx.request.subjects):
            why = _staff(ctx, subject)
            if why is None and subject in named:
                why = "role"
            if why is not None:
                # "why" is a list so that the page says it in words (reason_staff_*).
                args = {"subject": subject, "why": [f"staff_{why}"],
                        "words": [named.get(subject, subject)]}
                findings.append(Finding("subject_is_staff", REVIEW, args))
        return findings


def _staff(ctx: CheckContext, subject: str) -> str | None:
    """Why `subject` looks like staff rather than a customer, or None."""
    local, _, domain = subject.rpartition("@")
    if subject == (ctx.request.sender or "").lower():
        return "sender"
    if ctx.desk.editor(subject) is not None:
        return "editor"
    if _is_agent(ctx, subject):
        return "agent"
    if local in phrases.ROLE_LOCAL_PARTS:
        return "role"
    own = {a.rpartition("@")[2].lower() for a in ctx.config.service.support_addresses}
    if ctx.editor is not None and domain not in phrases.FREEMAIL_DOMAINS:
        own.add(ctx.editor.email.rpartition("@")[2].lower())
    return "domain" if domain in own else None


def _is_agent(ctx: CheckContext, subject: str) -> bool:
    session = object_session(ctx.request)
    if session is None:
        return False
    found = session.scalar(select(Agent.id).where(func.lower(Agent.email) == subject))
    return found is not None


class SubjectNotFound:
    name = "subject_not_found"
    description = (
        "A subject has no items in the covered channels: often a misread address. An "
        "erasure waits for an agent; an export is told that nothing was found."
    )

    def check(self, ctx: CheckContext) -> list[Finding]:
        severity = REVIEW if Kind.ERASE in ctx.request.kinds else INFO
        return [
            Finding("subject_not_found", severity, {"subject": subject, "words": [subject]})
            for subject, total in _totals(ctx).items()
            if total == 0
        ]


class LargeErase:
    name = "large_erase"
    description = (
        "An erasure touching more than policy.review_erase_above items or more than "
        "policy.review_subjects_above subjects: only an admin may approve it."
    )

    def check(self, ctx: CheckContext) -> list[Finding]:
        if Kind.ERASE not in ctx.request.kinds:
            return []
        policy = ctx.config.policy
        totals = _totals(ctx)
        items, subjects = sum(totals.values()), len(ctx.request.subjects)
        if items <= policy.review_erase_above and subjects <= policy.review_subjects_above:
            return []
        args = {"items": items, "subjects": subjects, "item_limit": policy.review_erase_above,
                "subject_limit": policy.review_subjects_above,
                "words": [s.email for s in ctx.request.subjects]}
        return [Finding("large_erase", REVIEW, args)]


def _totals(ctx: CheckContext) -> dict[str, int]:
    """Items per subject in the covered channels, counted once per check run
    through the desk protocol (the desk decides how addresses match)."""
    if not ctx.covered:
        return {}
    if ctx.totals is None:
        ctx.totals = {
            s.email: sum(n for kinds in ctx.desk.count(s.email, ctx.covered,
                                                       ctx.config.erase).values()
                         for n in kinds.values())
            for s in ctx.request.subjects
        }
    return ctx.totals
