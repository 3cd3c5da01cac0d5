"""DeskStore over the reference schema in models/desk.py.

Set-based SQL throughout, never a row at a time through the ORM; erasing is
in `sql_erase`, the scan of others' items in `mentions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, case, func, select
from sqlalchemy.orm import Session

from kundo_gdpr import db, identity
from kundo_gdpr.desk import keys, mentions, owners, ownership, reviews, sql_erase
from kundo_gdpr.desk.protocol import (
    DEFAULT,
    ChannelRef,
    Counts,
    EditorRef,
    EraseStep,
    ExportSheet,
    Mention,
    OrganizationRef,
    Strategy,
)
from kundo_gdpr.desk.sql_erase import SqlEraser, item_kinds
from kundo_gdpr.models import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    Editor,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
    channel_editors,
)
from kundo_gdpr.vocabulary import CHANNELS, ChannelKind

MAIL_COLUMNS = ("conversation", "conversation_subject", "direction", "from", "to", "date", "body")
FORUM_COLUMNS = ("post", "channel", "topic", "title", "author_name", "author_ip", "date", "body")
CHAT_COLUMNS = ("session", "channel", "visitor_ip", "sender", "date", "body")


def purge_tables(engine: Engine) -> None:
    """After an erase: see `kundo_gdpr.db.purge`."""
    db.purge(engine, sql_erase.ERASED_TABLES)


def analyse_tables(engine: Engine) -> None:
    """Before a replay after a restore: see `kundo_gdpr.db.analyse_unanalysed`."""
    db.analyse_unanalysed(engine, sql_erase.ERASED_TABLES)


class SqlDesk:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- people and channels ------------------------------------------------

    def editor(self, email: str) -> EditorRef | None:
        row = self.session.execute(
            select(Editor.id, Editor.name, Editor.email).where(
                func.lower(Editor.email) == email.lower()
            )
        ).first()
        return EditorRef(row.id, row.name, row.email) if row else None

    def organizations(self) -> list[OrganizationRef]:
        rows = self.session.execute(
            select(Organization.id, Organization.name, Organization.slug).order_by(Organization.id)
        )
        return [OrganizationRef(r.id, r.name, r.slug) for r in rows]

    def editor_channels(self, editor_id: int) -> list[ChannelRef]:
        stmt = (
            _channel_refs()
            .join(channel_editors, channel_editors.c.channel_id == Channel.id)
            .where(channel_editors.c.editor_id == editor_id)
        )
        return self._refs(stmt)

    def organization_channels(self, organization_id: int, kinds: Sequence[str]) -> list[ChannelRef]:
        stmt = _channel_refs().where(
            Channel.organization_id == organization_id, Channel.kind.in_(list(kinds))
        )
        return self._refs(stmt)

    def channel_editor_names(self, channel_id: int) -> list[str]:
        stmt = (
            select(Editor.name)
            .join(channel_editors, channel_editors.c.editor_id == Editor.id)
            .where(channel_editors.c.channel_id == channel_id)
            .order_by(Editor.name)
        )
        return list(self.session.scalars(stmt))

    def _refs(self, stmt: Select[*tuple[Any, ...]]) -> list[ChannelRef]:
        rows = self.session.execute(stmt.order_by(Channel.id)).all()
        return [ChannelRef(r.id, r.kind, r.name, r.organization_id, r.org_name) for r in rows]

    # -- counting and erasing -----------------------------------------------

    def subject_key(self, subject: str) -> str | None:
        """The subject's normalised address, with every owner key in step first."""
        keys.catch_up(self.session)
        return identity.subject_key(subject)

    def stored_names(self, subject: str, channels: Sequence[ChannelRef]) -> list[str]:
        if (key := self.subject_key(subject)) is None:
            return []
        return mentions.stored_names(self.session, key, [c.id for c in channels])

    def count(
        self, subject: str, channels: Sequence[ChannelRef], strategy: Strategy = DEFAULT
    ) -> Counts:
        counts = zero_counts(channels, strategy)
        if (key := self.subject_key(subject)) is None:
            return counts
        subject = key
        eraser = SqlEraser(self.session, subject)
        names = mentions.stored_names(self.session, key, [c.id for c in channels])
        for kind, items in counts.items():
            ids = _ids(channels, kind)
            items.update(eraser.counts(kind, ids, strategy))
            for page in mentions.scan(self.session, subject, names, ids, kind, strategy,
                                      dry_run=True):
                items["mentions"] += page.changed
                items["name_mentions"] += page.named
            items["name_mentions"] += len(reviews.review(self.session, key, ids, kind, strategy))
        return counts

    def mentions(
        self, subject: str, channels: Sequence[ChannelRef], strategy: Strategy = DEFAULT
    ) -> list[Mention]:
        if (key := self.subject_key(subject)) is None:
            return []
        subject = key
        names = mentions.stored_names(self.session, key, [c.id for c in channels])
        found: list[Mention] = []
        for kind in CHANNELS:
            for page in mentions.scan(self.session, subject, names, _ids(channels, kind), kind,
                                      strategy, dry_run=True):
                found += page.listed
            found += reviews.review(self.session, key, _ids(channels, kind), kind, strategy)
        return found[: mentions.LISTED]

    def erase(
        self,
        subject: str,
        channels: Sequence[ChannelRef],
        strategy: Strategy = DEFAULT,
        names: Sequence[str] | None = None,
        cursor: dict[str, int] | None = None,
    ) -> Iterator[EraseStep]:
        """Deletes first, batch by batch; then the scan of others' items, page by page.

        Small batches and pages are handed out together, up to `BATCH` rows a
        step: each step is a transaction of the caller's (and a commit), and
        a subject with a few hundred items needs one, not one per kind.
        """
        if (key := self.subject_key(subject)) is None:
            return
        subject = key
        if names is None:
            names = mentions.stored_names(self.session, key, [c.id for c in channels])
        pending: tuple[EraseStep, int] | None = None
        for step, rows in self._erase_steps(subject, channels, strategy, names, cursor):
            if pending is not None:
                step, rows = _merged(pending[0], step), pending[1] + rows
            pending = None
            if rows >= sql_erase.BATCH:
                yield step
            else:
                pending = step, rows
        if pending is not None:
            yield dataclasses.replace(pending[0], last=True)

    def _erase_steps(
        self, subject: str, channels: Sequence[ChannelRef], strategy: Strategy,
        names: Sequence[str], cursor: dict[str, int] | None,
    ) -> Iterator[tuple[EraseStep, int]]:
        """Each batch and scan page with the number of rows it removed, changed or read."""
        eraser = SqlEraser(self.session, subject)
        for kind in CHANNELS:
            if ids := _ids(channels, kind):
                for batch in eraser.steps(kind, ids, strategy):
                    yield EraseStep({kind: batch}, [], {}), sum(batch.values())
        for kind in CHANNELS:
            for page in mentions.scan(self.session, subject, names, _ids(channels, kind), kind,
                                      strategy, dry_run=False, cursor=cursor):
                counts: Counts = {kind: {"mentions": page.changed, "name_mentions": page.named}}
                yield EraseStep(counts, page.listed, dict([page.cursor])), page.rows
            # Listed once: the cursor says so, for a run resumed after a crash.
            done = f"review.{kind}"
            if _ids(channels, kind) and not (cursor or {}).get(done):
                found = reviews.review(self.session, subject, _ids(channels, kind), kind, strategy)
                yield EraseStep({kind: {"name_mentions": len(found)}}, found, {done: 1}), 1

    def owner_keys(self, channels: Sequence[ChannelRef]) -> Iterator[tuple[int, str]]:
        return owners.owner_keys(self.session, [c.id for c in channels])

    # -- exporting ----------------------------------------------------------

    def export(self, subject: str, channels: Sequence[ChannelRef]) -> Iterator[ExportSheet]:
        subject = self.subject_key(subject) or ""
        if ids := _ids(channels, ChannelKind.MAIL):
            yield ExportSheet(ChannelKind.MAIL, MAIL_COLUMNS, self._mail_rows(subject, ids))
        if ids := _ids(channels, ChannelKind.FORUM):
            yield ExportSheet(ChannelKind.FORUM, FORUM_COLUMNS, self._forum_rows(subject, ids))
        if ids := _ids(channels, ChannelKind.CHAT):
            yield ExportSheet(ChannelKind.CHAT, CHAT_COLUMNS, self._chat_rows(subject, ids))

    def attachments(
        self, subject: str, channels: Sequence[ChannelRef]
    ) -> Iterator[tuple[str, int, str, bytes]]:
        subject = self.subject_key(subject) or ""
        key = subject or None
        if ids := _ids(channels, ChannelKind.MAIL):
            messages = ownership.mail_message_ids(key, ids).order_by(None)
            yield from self._files(ChannelKind.MAIL, Attachment.mail_message_id.in_(messages))
        if ids := _ids(channels, ChannelKind.FORUM):
            posts = select(ForumPost.id).where(_post_match(subject, ids))
            yield from self._files(ChannelKind.FORUM, Attachment.forum_post_id.in_(posts))
        if ids := _ids(channels, ChannelKind.CHAT):
            messages = ownership.chat_message_ids(key, ids).order_by(None)
            yield from self._files(ChannelKind.CHAT, Attachment.chat_message_id.in_(messages))

    def _files(
        self, kind: str, where: ColumnElement[bool]
    ) -> Iterator[tuple[str, int, str, bytes]]:
        stmt = select(Attachment.id, Attachment.filename, Attachment.data).where(where)
        for row in self.session.execute(stmt.order_by(Attachment.id).execution_options(
                yield_per=50)):
            yield kind, row.id, row.filename, row.data

    def _mail_rows(self, subject: str, ids: list[int]) -> Iterator[tuple[Any, ...]]:
        # Their messages and the agents' replies to them, in whoever's
        # conversation; another person's subject line is not theirs.
        theirs = ownership.mail_message_ids(subject or None, ids).order_by(None)
        stmt = (
            select(
                MailConversation.id,
                case((MailConversation.customer_key == subject, MailConversation.subject),
                     else_=None),
                MailMessage.direction,
                MailMessage.from_addr,
                MailMessage.to_addr,
                MailMessage.created_at,
                MailMessage.body,
            )
            .join(MailMessage, MailMessage.conversation_id == MailConversation.id)
            .where(MailMessage.id.in_(theirs))
            .order_by(MailConversation.id, MailMessage.created_at, MailMessage.id)
        )
        yield from self._stream(stmt)

    def _forum_rows(self, subject: str, ids: list[int]) -> Iterator[tuple[Any, ...]]:
        stmt = (
            select(
                ForumPost.id,
                Channel.name,
                ForumPost.topic_id,
                ForumPost.title,
                ForumPost.author_name,
                ForumPost.author_ip,
                ForumPost.created_at,
                ForumPost.body,
            )
            .join(Channel, Channel.id == ForumPost.channel_id)
            .where(_post_match(subject, ids))
            .order_by(ForumPost.created_at, ForumPost.id)
        )
        yield from self._stream(stmt)

    def _chat_rows(self, subject: str, ids: list[int]) -> Iterator[tuple[Any, ...]]:
        # Their messages, in any session; the IP only of a session that is theirs.
        theirs = ownership.chat_message_ids(subject or None, ids).order_by(None)
        stmt = (
            select(
                ChatSession.id,
                Channel.name,
                case((ChatSession.visitor_key == subject, ChatSession.visitor_ip), else_=None),
                ChatMessage.sender,
                ChatMessage.sent_at,
                ChatMessage.body,
            )
            .join(Channel, Channel.id == ChatSession.channel_id)
            .join(ChatMessage, ChatMessage.session_id == ChatSession.id)
            .where(ChatMessage.id.in_(theirs))
            .order_by(ChatSession.id, ChatMessage.sent_at, ChatMessage.id)
        )
        yield from self._stream(stmt)

    def _stream(self, stmt: Select[*tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        result = self.session.execute(stmt.execution_options(yield_per=1000))
        for row in result:
            yield tuple(row)


def _channel_refs() -> Select[*tuple[Any, ...]]:
    return select(
        Channel.id,
        Channel.kind,
        Channel.name,
        Channel.organization_id,
        Organization.name.label("org_name"),
    ).join(Organization, Organization.id == Channel.organization_id)


def _ids(channels: Sequence[ChannelRef], kind: str) -> list[int]:
    return [c.id for c in channels if c.kind == kind]


def zero_counts(channels: Sequence[ChannelRef], strategy: Strategy) -> Counts:
    """Every count an erase of these channels reports, at zero, in report order."""
    return {
        kind: dict.fromkeys((*item_kinds(kind, strategy), "mentions", "name_mentions"), 0)
        for kind in CHANNELS if _ids(channels, kind)
    }


def add(into: Counts, delta: Counts) -> Counts:
    for kind, items in delta.items():
        for name, n in items.items():
            into.setdefault(kind, {}).setdefault(name, 0)
            into[kind][name] += n
    return into


def _merged(first: EraseStep, then: EraseStep) -> EraseStep:
    counts = add({k: dict(v) for k, v in first.counts.items()}, then.counts)
    return EraseStep(counts, [*first.mentions, *then.mentions], {**first.cursor, **then.cursor})


def _post_match(subject: str, ids: list[int]) -> ColumnElement[bool]:
    return and_(
        identity.matches(ForumPost.author_key, subject), ForumPost.channel_id.in_(ids)
    )
