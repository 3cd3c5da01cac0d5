"""DeskStore over the reference schema in models/desk.py.

Set-based SQL throughout: one statement per item kind, never a row at a time
through the ORM, so erasing thousands of items is a handful of statements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from kundo_gdpr import i18n
from kundo_gdpr.desk import mentions
from kundo_gdpr.desk.protocol import ChannelRef, Counts, EditorRef, ExportSheet, Mention
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

MAIL_COLUMNS = ("conversation", "conversation_subject", "direction", "from", "to", "date", "body")
FORUM_COLUMNS = ("post", "channel", "topic", "title", "author_name", "author_ip", "date", "body")
CHAT_COLUMNS = ("session", "channel", "visitor_ip", "sender", "date", "body")
# Ids per erase statement: bounded work and locks, however heavy the subject.
BATCH = 1000


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

    def count(self, subject: str, channels: Sequence[ChannelRef]) -> Counts:
        ids = _ids(channels, "mail"), _ids(channels, "forum"), _ids(channels, "chat")
        names = mentions.stored_names(self.session, subject, [c.id for c in channels])
        counts: Counts = {}
        if ids[0]:
            counts["mail"] = self._mail_counts(subject, ids[0])
        if ids[1]:
            counts["forum"] = self._forum_counts(subject, ids[1])
        if ids[2]:
            counts["chat"] = self._chat_counts(subject, ids[2])
        for kind, kind_ids in zip(("mail", "forum", "chat"), ids, strict=True):
            if kind_ids:
                counts[kind].update(self._mentions(subject, names, kind, kind_ids, dry_run=True))
        return counts

    def mentions(self, subject: str, channels: Sequence[ChannelRef]) -> list[Mention]:
        names = mentions.stored_names(self.session, subject, [c.id for c in channels])
        found: list[Mention] = []
        for kind in ("mail", "forum", "chat"):
            if ids := _ids(channels, kind):
                found += mentions.find(self.session, subject, names, ids, kind)
        return found

    def erase(self, subject: str, channels: Sequence[ChannelRef]) -> Counts:
        """Erase in batches of `BATCH` ids; counts are what this call removed.

        Every batch removes its rows from the match, so a re-run after a
        crash picks up where the last committed work ended and counts only
        what is left.
        """
        names = mentions.stored_names(self.session, subject, [c.id for c in channels])
        counts: Counts = {}
        if ids := _ids(channels, "mail"):
            counts["mail"] = self._erase_mail(subject, ids)
        if ids := _ids(channels, "forum"):
            counts["forum"] = self._erase_forum(subject, ids)
        if ids := _ids(channels, "chat"):
            counts["chat"] = self._erase_chat(subject, ids)
        for kind in counts:
            kind_ids = _ids(channels, kind)
            counts[kind].update(self._mentions(subject, names, kind, kind_ids, dry_run=False))
        return counts

    def _mentions(
        self, subject: str, names: list[str], kind: str, ids: list[int], *, dry_run: bool
    ) -> dict[str, int]:
        return {
            "mentions": mentions.replace_addresses(
                self.session, subject, ids, kind, dry_run=dry_run
            ),
            "name_mentions": mentions.count_names(self.session, subject, names, ids, kind),
        }

    def _mail_counts(self, subject: str, ids: list[int]) -> dict[str, int]:
        conversations = select(MailConversation.id).where(_conversation_match(subject, ids))
        messages = select(MailMessage.id).where(MailMessage.conversation_id.in_(conversations))
        return {
            "conversations": self._count(conversations),
            "messages": self._count(messages),
            "attachments": self._count(
                select(Attachment.id).where(Attachment.mail_message_id.in_(messages))
            ),
        }

    def _forum_counts(self, subject: str, ids: list[int]) -> dict[str, int]:
        posts = select(ForumPost.id).where(_post_match(subject, ids))
        kept_openers = posts.where(_has_others_replies(subject))
        return {
            "posts": self._count(posts.where(~_has_others_replies(subject))),
            "redacted": self._count(kept_openers),
            "attachments": self._count(
                select(Attachment.id).where(Attachment.forum_post_id.in_(posts))
            ),
        }

    def _chat_counts(self, subject: str, ids: list[int]) -> dict[str, int]:
        sessions = select(ChatSession.id).where(_session_match(subject, ids))
        messages = select(ChatMessage.id).where(ChatMessage.session_id.in_(sessions))
        return {
            "sessions": self._count(sessions),
            "messages": self._count(messages),
            "attachments": self._count(
                select(Attachment.id).where(Attachment.chat_message_id.in_(messages))
            ),
        }

    def _erase_mail(self, subject: str, ids: list[int]) -> dict[str, int]:
        counts = {"conversations": 0, "messages": 0, "attachments": 0}
        match = select(MailConversation.id).where(_conversation_match(subject, ids))
        for batch in self._batches(match.order_by(MailConversation.id)):
            messages = select(MailMessage.id).where(MailMessage.conversation_id.in_(batch))
            counts["attachments"] += self._delete(
                delete(Attachment).where(Attachment.mail_message_id.in_(messages))
            )
            counts["messages"] += self._delete(
                delete(MailMessage).where(MailMessage.conversation_id.in_(batch))
            )
            counts["conversations"] += self._delete(
                delete(MailConversation).where(MailConversation.id.in_(batch))
            )
        return counts

    def _erase_chat(self, subject: str, ids: list[int]) -> dict[str, int]:
        counts = {"sessions": 0, "messages": 0, "attachments": 0}
        match = select(ChatSession.id).where(_session_match(subject, ids))
        for batch in self._batches(match.order_by(ChatSession.id)):
            messages = select(ChatMessage.id).where(ChatMessage.session_id.in_(batch))
            counts["attachments"] += self._delete(
                delete(Attachment).where(Attachment.chat_message_id.in_(messages))
            )
            counts["messages"] += self._delete(
                delete(ChatMessage).where(ChatMessage.session_id.in_(batch))
            )
            counts["sessions"] += self._delete(
                delete(ChatSession).where(ChatSession.id.in_(batch))
            )
        return counts

    def _erase_forum(self, subject: str, ids: list[int]) -> dict[str, int]:
        counts = {"posts": 0, "redacted": 0, "attachments": 0}
        # Replies first, so that deleting an opener never cascades to one of
        # the subject's own replies before it is counted.
        match = select(ForumPost.id).where(_post_match(subject, ids))
        ordered = match.order_by(ForumPost.topic_id.is_(None), ForumPost.id)
        for batch in self._batches(ordered):
            counts["attachments"] += self._delete(
                delete(Attachment).where(Attachment.forum_post_id.in_(batch))
            )
            # An opening post that others replied to is redacted, not deleted:
            # deleting it would take their replies (and their thread) with it.
            openers = list(self.session.scalars(
                select(ForumPost.id).where(ForumPost.id.in_(batch), _has_others_replies(subject))
            ))
            counts["redacted"] += self._redact(openers)
            counts["posts"] += self._delete(
                delete(ForumPost).where(ForumPost.id.in_(batch), ForumPost.id.not_in(openers))
            )
        return counts

    def _redact(self, opener_ids: list[int]) -> int:
        if not opener_ids:
            return 0
        redact = {"author_name": None, "author_email": None, "author_ip": None}
        # Every kept opener gets the English marker; Swedish channels then get theirs.
        self.session.execute(
            update(ForumPost)
            .where(ForumPost.id.in_(opener_ids))
            .values(body=i18n.text("en", "redacted_post"), **redact)
        )
        self.session.execute(
            update(ForumPost)
            .where(ForumPost.id.in_(opener_ids), ForumPost.channel_id.in_(_channels_in("sv")))
            .values(body=i18n.text("sv", "redacted_post"))
        )
        return len(opener_ids)

    def _batches(self, match: Select[*tuple[Any, ...]]) -> Iterator[list[int]]:
        """Pages of matching ids; the caller removes each page from the match."""
        while batch := list(self.session.scalars(match.limit(BATCH))):
            yield batch

    def _delete(self, stmt: Any) -> int:
        return int(getattr(self.session.execute(stmt), "rowcount", 0) or 0)

    def _count(self, stmt: Select[*tuple[Any, ...]]) -> int:
        return int(self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)

    # -- exporting ----------------------------------------------------------

    def export(self, subject: str, channels: Sequence[ChannelRef]) -> Iterator[ExportSheet]:
        if ids := _ids(channels, "mail"):
            yield ExportSheet("mail", MAIL_COLUMNS, self._mail_rows(subject, ids))
        if ids := _ids(channels, "forum"):
            yield ExportSheet("forum", FORUM_COLUMNS, self._forum_rows(subject, ids))
        if ids := _ids(channels, "chat"):
            yield ExportSheet("chat", CHAT_COLUMNS, self._chat_rows(subject, ids))

    def _mail_rows(self, subject: str, ids: list[int]) -> Iterator[tuple[Any, ...]]:
        stmt = (
            select(
                MailConversation.id,
                MailConversation.subject,
                MailMessage.direction,
                MailMessage.from_addr,
                MailMessage.to_addr,
                MailMessage.created_at,
                MailMessage.body,
            )
            .join(MailMessage, MailMessage.conversation_id == MailConversation.id)
            .where(_conversation_match(subject, ids))
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
        stmt = (
            select(
                ChatSession.id,
                Channel.name,
                ChatSession.visitor_ip,
                ChatMessage.sender,
                ChatMessage.sent_at,
                ChatMessage.body,
            )
            .join(Channel, Channel.id == ChatSession.channel_id)
            .join(ChatMessage, ChatMessage.session_id == ChatSession.id)
            .where(_session_match(subject, ids))
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


def _conversation_match(subject: str, ids: list[int]) -> ColumnElement[bool]:
    return and_(
        func.lower(MailConversation.customer_email) == subject.lower(),
        MailConversation.channel_id.in_(ids),
    )


def _post_match(subject: str, ids: list[int]) -> ColumnElement[bool]:
    return and_(
        func.lower(ForumPost.author_email) == subject.lower(), ForumPost.channel_id.in_(ids)
    )


def _session_match(subject: str, ids: list[int]) -> ColumnElement[bool]:
    return and_(
        func.lower(ChatSession.visitor_email) == subject.lower(), ChatSession.channel_id.in_(ids)
    )


def _has_others_replies(subject: str) -> ColumnElement[bool]:
    reply = aliased(ForumPost)
    return and_(
        ForumPost.topic_id.is_(None),
        exists().where(
            reply.topic_id == ForumPost.id,
            func.coalesce(func.lower(reply.author_email), "") != subject.lower(),
        ),
    )


def _channels_in(language: str) -> Select[int]:
    return (
        select(Channel.id)
        .join(Organization, Organization.id == Channel.organization_id)
        .where(Organization.language == language)
    )
