"""Request checks. Each check is a small object with a name and one method;
the pipeline is a tuple of them; `run_checks` is the short driver.

A check returns findings: a stable code, a severity that decides what
happens to the request, and arguments for the reply and the agents' UI.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any, Protocol

from sqlalchemy.orm import object_session

from kundo_gdpr import auth, confirm
from kundo_gdpr.config import Config
from kundo_gdpr.desk import ChannelRef, DeskStore, EditorRef
from kundo_gdpr.intake import quotes
from kundo_gdpr.intake.parse import ADDRESS_LIKE, ParseError, parse
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

    @functools.cached_property
    def text(self) -> str | None:
        """The mail's new text as the parser reads it, parsed once for every
        check that reads it; None when the mail cannot be parsed."""
        try:
            raw = self.request.inbound_mail.raw
            return parse(raw, self.config.service.support_addresses).text
        except ParseError:
            return None


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
        confirmed = confirm.confirm_code(session, config, request.sender, ctx.text)
        if confirmed is None:
            return []
        args = {"reference": confirmed.reference}
        if request.kinds:  # also a request of its own: it goes on through the checks
            return [Finding("confirmation_reply", INFO, args)]
        # A plain reply did its job; it is stored, never answered or acted on itself.
        return [Finding("confirmation_reply", IGNORE, args)]


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
        own = {c.organization_id: c.organization_name for c in edited}
        named = organizations_named(ctx)
        mine = [org for org in named if org in own]
        if len(mine) == 1 or (not named and len(own) == 1):
            ctx.organization_id = mine[0] if mine else next(iter(own))
            return self._coverage(ctx, edited)
        if not mine and len(named) == 1:
            # Only another organization is named: its channels are listed as
            # not covered, with who may ask instead; nothing is done.
            ctx.organization_id = named[0]
            findings = self._coverage(ctx, edited)
            ctx.organization_id = None
            return findings or [Finding("not_editor", REJECT, {"sender": ctx.request.sender})]
        return [Finding("ambiguous_organization", REVIEW, {"organizations": sorted(own.values())})]

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


def organizations_named(ctx: CheckContext) -> list[int]:
    """Ids of the organizations the request's own words name (Subject and new text).

    Signatures and quotes are left out: an editor's signature names their
    employer, which says nothing about which organization a request is for.
    A name counts as a word, also in the genitive ("Cykelbolagets forum"),
    with or without a company suffix, or as the organization's slug; never
    inside an address or a domain.
    """
    if ctx.text is None:
        return []
    text = ctx.request.subject_line + "\n" + quotes.without_signature(ctx.text)
    text = ADDRESS_LIKE.sub(" ", text)
    return [org.id for org in ctx.desk.organizations() if _names(text, org.name, org.slug)]


COMPANY_SUFFIX = re.compile(r"\s+(?:AB|HB|KB|Ltd|Inc|GmbH|AS|Oy|ApS)\.?$", re.IGNORECASE)


def _names(text: str, name: str, slug: str) -> bool:
    forms = {name, COMPANY_SUFFIX.sub("", name), slug}
    alternatives = "|".join(re.escape(f).replace(r"\ ", r"\s+") for f in forms if f)
    pattern = rf"(?<![\w.@-])(?:{alternatives})(?:s|'s|’s)?(?![\w@-]|\.\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


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
