"""Checks on whether the sender may ask: editor of the channels, of which organization."""

from __future__ import annotations

from collections.abc import Sequence

from kundo_gdpr.checks.base import INFO, REJECT, REVIEW, CheckContext, Finding
from kundo_gdpr.desk import ChannelRef
from kundo_gdpr.intake import organizations


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
        # Who else may ask is said only to an authenticated editor of that
        # organization; anyone else could learn a company's staff by asking.
        insiders = {c.organization_id for c in edited} if ctx.request.authenticated else set()
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
                        "editors": ctx.desk.channel_editor_names(channel.id)
                        if channel.organization_id in insiders
                        else [],
                    },
                )
            )
        return findings


def organizations_named(ctx: CheckContext) -> list[int]:
    """Ids of the organizations the request's own words name (intake/organizations.py)."""
    if ctx.text is None:
        return []
    return organizations.named(ctx.request.subject_line, ctx.text, ctx.desk.organizations())
