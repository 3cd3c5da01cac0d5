"""What every check shares: the finding, its severities, the context and the protocol."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Protocol

from kundo_gdpr.config import Config
from kundo_gdpr.desk import ChannelRef, DeskStore, EditorRef
from kundo_gdpr.intake.parse import ParseError, parse
from kundo_gdpr.intake.result import ParsedMail
from kundo_gdpr.models import Request

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
    # Items per subject in the covered channels, once counted (checks.doubts).
    totals: dict[str, int] | None = None

    @functools.cached_property
    def parsed(self) -> ParsedMail | None:
        """The mail as the parser reads it, parsed once for every check that
        reads it; None when the mail cannot be parsed."""
        try:
            return parse(self.request.inbound_mail.raw, self.config.service.support_addresses)
        except ParseError:
            return None

    @property
    def text(self) -> str | None:
        """The mail's new text; None when the mail cannot be parsed."""
        return None if self.parsed is None else self.parsed.text


class Check(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def check(self, ctx: CheckContext) -> list[Finding]: ...
