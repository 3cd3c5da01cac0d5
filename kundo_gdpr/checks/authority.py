"""Checks on whether the sender may ask: editor of the channels, of which organization."""

from __future__ import annotations

import re
from collections.abc import Sequence

from kundo_gdpr.checks.base import INFO, REJECT, REVIEW, CheckContext, Finding
from kundo_gdpr.desk import ChannelRef
from kundo_gdpr.intake import quotes
from kundo_gdpr.intake.parse import ADDRESS_LIKE


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
