"""Request checks. Each check is a small object with a name and one method;
the pipeline is a tuple of them; `run_checks` is the short driver.

A check returns findings: a stable code, a severity that decides what
happens to the request, and arguments for the reply and the agents' UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any, Protocol

from kundo_gdpr import auth
from kundo_gdpr.config import Config
from kundo_gdpr.desk import ChannelRef, DeskStore, EditorRef
from kundo_gdpr.models import Request
from kundo_gdpr.replies.outbox import OWN_HEADER

# What a finding does to the request, strongest first.
IGNORE = "ignore"  # machine mail: never answered
QUARANTINE = "quarantine"  # cannot be acted on or safely answered
REJECT = "reject"  # answered with the problems and how to fix them
REVIEW = "review"  # an agent must look, even under auto-approve
INFO = "info"  # told to the editor, changes nothing
SEVERITIES = (IGNORE, QUARANTINE, REJECT, REVIEW, INFO)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    args: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "args": self.args}


@dataclass
class CheckContext:
    """What the checks read, and what the authorization check works out."""

    request: Request
    desk: DeskStore
    config: Config
    editor: EditorRef | None = None
    covered: list[ChannelRef] = field(default_factory=list)
    not_covered: list[ChannelRef] = field(default_factory=list)
    organization_id: int | None = None


class Check(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def check(self, ctx: CheckContext) -> list[Finding]: ...


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


class Editor:
    name = "editor"
    description = "The sender edits the channels the request covers."

    def check(self, ctx: CheckContext) -> list[Finding]:
        editor = ctx.desk.editor(ctx.request.sender or "")
        edited = ctx.desk.editor_channels(editor.id) if editor else []
        if editor is None or not edited:
            return [Finding("not_editor", REJECT, {"sender": ctx.request.sender})]
        ctx.editor = editor
        organizations = sorted({c.organization_id for c in edited})
        if len(organizations) > 1:
            return [
                Finding(
                    "ambiguous_organization",
                    REVIEW,
                    {"organizations": sorted({c.organization_name for c in edited})},
                )
            ]
        ctx.organization_id = organizations[0]
        return self._coverage(ctx, edited)

    def _coverage(self, ctx: CheckContext, edited: Sequence[ChannelRef]) -> list[Finding]:
        kinds = ctx.request.channel_kinds
        if not kinds:
            return []
        assert ctx.organization_id is not None
        named = ctx.desk.organization_channels(ctx.organization_id, kinds)
        edited_ids = {c.id for c in edited}
        ctx.covered = [c for c in named if c.id in edited_ids]
        ctx.not_covered = [c for c in named if c.id not in edited_ids]
        findings = []
        if not ctx.covered:
            findings.append(Finding("not_editor", REJECT, {"sender": ctx.request.sender}))
        for channel in ctx.not_covered:
            findings.append(
                Finding(
                    "channel_not_covered",
                    INFO,
                    {
                        "channel": channel.name,
                        "kind": channel.kind,
                        "editors": ctx.desk.channel_editor_names(channel.id),
                    },
                )
            )
        return findings


PIPELINE: tuple[Check, ...] = (
    OwnMail(),
    MachineMail(),
    OneSender(),
    Authenticity(),
    Assertion(),
    Kinds(),
    Subjects(),
    Channels(),
    Editor(),
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
