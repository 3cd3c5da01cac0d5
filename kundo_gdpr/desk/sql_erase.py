"""Erasing and counting on the reference schema, per channel kind and strategy.

Set-based SQL in batches of `BATCH` ids: each batch is a handful of
statements, never a row at a time through the ORM. Every batch removes its
rows from the match (deleted, or the subject's address cleared), so the next
batch, or a re-run after a crash, sees only what is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    ARRAY,
    CTE,
    ColumnElement,
    Delete,
    Integer,
    Select,
    Update,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from kundo_gdpr import i18n, identity
from kundo_gdpr.desk import ownership
from kundo_gdpr.desk.protocol import Strategy
from kundo_gdpr.models import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
)
from kundo_gdpr.vocabulary import ChannelKind

# Ids per batch: bounded work, locks and transaction size, however heavy the
# subject. 5000, not 1000: a subject's usual few thousand items then commit in
# one or two transactions; each commit (FTS5 flush, WAL write, fsync) cost
# 10% of the erase at 1M items on SQLite, 5% on PostgreSQL (benchmarks/engines.py).
BATCH = 5000
Batch = dict[str, int]
# The tables an erase deletes from or rewrites: what db.purge and db compact treat.
ERASED_TABLES = ("forum_posts", "mail_conversations", "mail_messages", "chat_sessions",
                 "chat_messages", "attachments")


def item_kinds(kind: str, strategy: Strategy) -> tuple[str, ...]:
    """The item counts an erase of this channel kind reports, in order."""
    if kind == ChannelKind.MAIL:
        if strategy.mail == "messages":
            return ("messages", "attachments", "anonymised")
        return ("conversations", "messages", "attachments", "anonymised")
    if kind == ChannelKind.FORUM:
        if strategy.forum == "delete_threads":
            return ("posts", "replies", "attachments")
        return ("posts", "redacted", "attachments")
    return ("sessions", "messages", "attachments", "anonymised")


class SqlEraser:
    def __init__(self, session: Session, subject: str) -> None:
        self.session = session
        self.subject = subject  # the normalised key (kundo_gdpr.identity)
        self.postgres = session.get_bind().dialect.name == "postgresql"
        # Also with the undo vault on: it keeps these statements' images in them.
        self.one_statement = self.postgres

    def steps(self, kind: str, ids: list[int], strategy: Strategy) -> Iterator[Batch]:
        """Erase the subject's items of one channel kind, yielding each batch's counts."""
        if kind == ChannelKind.MAIL:
            return self._mail_messages(ids) if strategy.mail == "messages" else self._mail(ids)
        if kind == ChannelKind.FORUM:
            if strategy.forum == "delete_threads":
                return self._forum_threads(ids)
            return self._forum_posts(ids)
        return self._chat(ids)

    def counts(self, kind: str, ids: list[int], strategy: Strategy) -> Batch:
        """What `steps` would remove, without changing anything."""
        count: dict[str, Callable[[list[int]], Batch]] = {
            "conversations": self._count_mail, "messages": self._count_mail_messages,
            "posts": self._count_forum, "delete_threads": self._count_threads,
            "sessions": self._count_chat,
        }
        return count[getattr(strategy, kind)](ids)

    # -- mail ---------------------------------------------------------------

    def _mail(self, ids: list[int]) -> Iterator[Batch]:
        # The subject's messages (and the agents' replies to them) wherever
        # they are; then their conversations: gone if emptied, else kept for
        # the other customer without the subject's name and address.
        yield from self._messages(ownership.mail_message_ids(self.subject, ids),
                                  MailMessage, Attachment.mail_message_id)
        yield from self._owners(
            self._conversations(ids), MailConversation, "conversations",
            ~exists().where(MailMessage.conversation_id == MailConversation.id),
            {"customer_email": None, "customer_name": None, "customer_key": None})

    def _mail_messages(self, ids: list[int]) -> Iterator[Batch]:
        # Only what the subject sent goes; the conversation stays for the
        # agents' side, without the subject's name and address.
        yield from self._messages(ownership.mail_message_ids(self.subject, ids, sent_only=True),
                                  MailMessage, Attachment.mail_message_id)
        for batch in self._batches(self._conversations(ids)):
            yield {"anonymised": self._anonymise_conversations(batch)}

    def _anonymise_conversations(self, batch: list[int]) -> int:
        return self._run(update(MailConversation).where(self._in(MailConversation.id, batch))
                         .values(customer_email=None, customer_name=None, customer_key=None))

    def _count_mail(self, ids: list[int]) -> Batch:
        messages = ownership.mail_message_ids(self.subject, ids)
        conversations = self._conversations(ids)
        return {
            "conversations": self._count(
                conversations.where(~ownership.others_mail_in_conversation(self.subject))),
            "messages": self._count(messages),
            "attachments": self._count(select(Attachment.id).where(
                Attachment.mail_message_id.in_(messages.order_by(None)))),
            "anonymised": self._count(
                conversations.where(ownership.others_mail_in_conversation(self.subject))),
        }

    def _count_mail_messages(self, ids: list[int]) -> Batch:
        sent = ownership.mail_message_ids(self.subject, ids, sent_only=True)
        return {
            "messages": self._count(sent),
            "attachments": self._count(
                select(Attachment.id).where(Attachment.mail_message_id.in_(sent.order_by(None)))),
            "anonymised": self._count(self._conversations(ids)),
        }

    def _conversations(self, ids: list[int]) -> Select[int]:
        return (select(MailConversation.id)
                .where(self._by_subject(MailConversation.customer_key),
                       MailConversation.channel_id.in_(ids))
                .order_by(MailConversation.id))

    def _owners(self, match: Select[int], model: Any, name: str, empty: ColumnElement[bool],
                cleared: dict[str, None]) -> Iterator[Batch]:
        """The subject's conversations or sessions, after their messages went:
        deleted when `empty`, the others kept with the `cleared` columns emptied."""
        if self.one_statement:
            page = match.limit(BATCH).cte("page")
            gone = _gone(delete(model).where(model.id.in_(select(page.c.id)), empty),
                         model.id, name)
            yield from self._in_one_statement(page, {
                name: gone,
                "anonymised": _gone(update(model).where(
                    model.id.in_(select(page.c.id)), model.id.not_in(select(gone.c.id)))
                    .values(cleared), model.id, "anonymised"),
            })
            return
        for batch in self._batches(match):
            deleted = self._run(delete(model).where(self._in(model.id, batch), empty))
            kept = self._run(update(model).where(self._in(model.id, batch)).values(cleared))
            yield {name: deleted, "anonymised": kept}

    def _messages(self, match: Select[int], model: Any, attached: Any) -> Iterator[Batch]:
        """Delete the matching messages and their attachments, a batch at a time."""
        if self.one_statement:
            page = match.limit(BATCH).cte("page")
            yield from self._in_one_statement(page, {
                "attachments": _gone(delete(Attachment).where(
                    attached.in_(select(page.c.id))), Attachment.id, "attachments"),
                "messages": _gone(delete(model).where(model.id.in_(select(page.c.id))),
                                  model.id, "messages"),
            })
            return
        for batch in self._batches(match):
            yield {
                "attachments": self._run(delete(Attachment).where(self._in(attached, batch))),
                "messages": self._run(delete(model).where(self._in(model.id, batch))),
            }

    # -- forum --------------------------------------------------------------

    def _forum_posts(self, ids: list[int]) -> Iterator[Batch]:
        # Replies first, so that deleting an opener never cascades to one of
        # the subject's own replies before it is counted.
        match = select(ForumPost.id).where(self._post(ids))
        ordered = match.order_by(ForumPost.topic_id.is_(None), ForumPost.id)
        if self.one_statement:
            page = ordered.limit(BATCH).cte("page")
            in_batch = ForumPost.id.in_(select(page.c.id))
            redacted = _gone(self._redaction().where(in_batch), ForumPost.id, "redacted")
            yield from self._in_one_statement(page, {
                "attachments": _gone(delete(Attachment).where(
                    Attachment.forum_post_id.in_(select(page.c.id))), Attachment.id,
                    "attachments"),
                "redacted": redacted,
                "posts": _gone(delete(ForumPost).where(
                    in_batch, ForumPost.id.not_in(select(redacted.c.id))), ForumPost.id, "posts"),
            })
            return
        for batch in self._batches(ordered):
            attachments = self._run(
                delete(Attachment).where(self._in(Attachment.forum_post_id, batch)))
            openers = self._redact(batch)
            posts = self._run(
                delete(ForumPost).where(self._in(ForumPost.id, batch),
                                        ~self._in(ForumPost.id, openers)))
            yield {"attachments": attachments, "redacted": len(openers), "posts": posts}

    def _forum_threads(self, ids: list[int]) -> Iterator[Batch]:
        # Threads the subject opened go whole; then their replies elsewhere.
        openers = select(ForumPost.id).where(self._post(ids), ForumPost.topic_id.is_(None))
        for batch in self._batches(openers.order_by(ForumPost.id)):
            thread = select(ForumPost.id).where(
                (self._in(ForumPost.topic_id, batch)) | (self._in(ForumPost.id, batch)))
            attachments = self._run(
                delete(Attachment).where(Attachment.forum_post_id.in_(thread)))
            theirs = self._run(delete(ForumPost).where(
                self._in(ForumPost.topic_id, batch), self._by_subject(ForumPost.author_key)))
            replies = self._run(delete(ForumPost).where(self._in(ForumPost.topic_id, batch)))
            posts = self._run(delete(ForumPost).where(self._in(ForumPost.id, batch)))
            yield {"attachments": attachments, "replies": replies, "posts": posts + theirs}
        for batch in self._batches(select(ForumPost.id).where(self._post(ids))
                                   .order_by(ForumPost.id)):
            yield {
                "attachments": self._run(
                    delete(Attachment).where(self._in(Attachment.forum_post_id, batch))),
                "posts": self._run(delete(ForumPost).where(self._in(ForumPost.id, batch))),
            }

    def _count_forum(self, ids: list[int]) -> Batch:
        posts = select(ForumPost.id).where(self._post(ids))
        return {
            "posts": self._count(posts.where(~self._others_replied())),
            "redacted": self._count(posts.where(self._others_replied())),
            "attachments": self._count(
                select(Attachment.id).where(Attachment.forum_post_id.in_(posts))),
        }

    def _count_threads(self, ids: list[int]) -> Batch:
        posts = select(ForumPost.id).where(self._post(ids))
        openers = posts.where(ForumPost.topic_id.is_(None))
        replies = select(ForumPost.id).where(
            ForumPost.topic_id.in_(openers), ~self._by_subject(ForumPost.author_key))
        return {
            "posts": self._count(posts),
            "replies": self._count(replies),
            "attachments": self._count(select(Attachment.id).where(
                Attachment.forum_post_id.in_(posts) | Attachment.forum_post_id.in_(replies))),
        }

    def _redact(self, batch: list[int]) -> list[int]:
        """Redact the batch's opening posts that others replied to; their ids.

        Such a post is kept, not deleted: deleting it would take the others'
        replies (and their thread) with it. The marker is in the channel's
        language (English unless the organization is Swedish).
        """
        stmt = self._redaction().where(self._in(ForumPost.id, batch)).returning(ForumPost.id)
        return list(self.session.scalars(stmt, execution_options={"synchronize_session": False}))

    def _redaction(self) -> Update:
        """The UPDATE that redacts opening posts others replied to (add which posts)."""
        marker = case(
            (ForumPost.channel_id.in_(_channels_in("sv")), i18n.text("sv", "redacted_post")),
            else_=i18n.text("en", "redacted_post"),
        )
        return (
            update(ForumPost)
            .where(self._others_replied())
            .values(body=marker, title=case((ForumPost.title.is_(None), None), else_=marker),
                    author_name=None, author_email=None, author_key=None, author_ip=None)
        )

    def _post(self, ids: list[int]) -> ColumnElement[bool]:
        return and_(self._by_subject(ForumPost.author_key), ForumPost.channel_id.in_(ids))

    def _others_replied(self) -> ColumnElement[bool]:
        reply = aliased(ForumPost)
        return and_(
            ForumPost.topic_id.is_(None),
            exists().where(reply.topic_id == ForumPost.id,
                           func.coalesce(reply.author_key, "") != self.subject),
        )

    # -- chat ---------------------------------------------------------------

    def _chat(self, ids: list[int]) -> Iterator[Batch]:
        # Like mail: their messages, then their sessions, kept (without
        # their name, address and IP) where another visitor wrote too.
        yield from self._messages(ownership.chat_message_ids(self.subject, ids),
                                  ChatMessage, Attachment.chat_message_id)
        yield from self._owners(
            self._sessions(ids), ChatSession, "sessions",
            ~exists().where(ChatMessage.session_id == ChatSession.id),
            {"visitor_email": None, "visitor_name": None, "visitor_key": None,
             "visitor_ip": None})

    def _count_chat(self, ids: list[int]) -> Batch:
        messages = ownership.chat_message_ids(self.subject, ids)
        sessions = self._sessions(ids)
        return {
            "sessions": self._count(sessions.where(~ownership.others_in_session(self.subject))),
            "messages": self._count(messages),
            "attachments": self._count(select(Attachment.id).where(
                Attachment.chat_message_id.in_(messages.order_by(None)))),
            "anonymised": self._count(sessions.where(ownership.others_in_session(self.subject))),
        }

    def _sessions(self, ids: list[int]) -> Select[int]:
        return (select(ChatSession.id)
                .where(self._by_subject(ChatSession.visitor_key), ChatSession.channel_id.in_(ids))
                .order_by(ChatSession.id))

    # -- plumbing -----------------------------------------------------------

    def _by_subject(self, column: Any) -> ColumnElement[bool]:
        # A key column = :key is what the key indexes serve.
        return identity.matches(column, self.subject)

    def _in(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        # PostgreSQL gets one array parameter instead of a thousand: the
        # statement is parsed and planned once, not rendered per batch size.
        if self.postgres:
            return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))  # type: ignore[no-any-return]
        return column.in_(ids)  # type: ignore[no-any-return]

    def _in_one_statement(self, page: CTE, parts: dict[str, CTE]) -> Iterator[Batch]:
        """PostgreSQL: each batch in one statement, one round trip, till none is left.

        `page` picks the next batch of the subject's rows, `parts` the
        deletes and updates that erase it (data-modifying CTEs); their counts
        come back together. Every CTE runs to completion on the statement's
        snapshot, so a part that must not touch another's rows says so (the
        posts delete skips the redacted ones); cascades run after it and
        find nothing left to count. A page shorter than `BATCH` was the last.
        """
        size = func.count().select().select_from(page).scalar_subquery()
        stmt = select(size, *(func.count().select().select_from(part).scalar_subquery()
                              for part in parts.values()))
        while True:
            found, *counts = self.session.connection().execute(stmt).one()
            if found:
                yield dict(zip(parts, counts, strict=True))
            if found < BATCH:
                return

    def _batches(self, match: Select[int]) -> Iterator[list[int]]:
        """Pages of matching ids; the caller removes each page from the match."""
        while batch := list(self.session.scalars(match.limit(BATCH))):
            yield batch
            if len(batch) < BATCH:  # the last: asking again would find nothing
                return

    def _run(self, stmt: Any) -> int:
        # No ORM session sync: nothing of these rows is loaded, and syncing
        # would make PostgreSQL return every deleted id.
        result = self.session.execute(stmt, execution_options={"synchronize_session": False})
        return int(getattr(result, "rowcount", 0) or 0)

    def _count(self, stmt: Select[int]) -> int:
        return int(self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def _gone(stmt: Delete | Update, key: Any, name: str) -> CTE:
    """A data-modifying CTE returning the ids it removed or changed (PostgreSQL).

    Named `<name>_gone`, never like a table: a CTE's name hides the table of
    that name in the whole statement, and the undo vault's CTEs beside these
    read the tables (`actions/vault/statement.py`).
    """
    return stmt.returning(key).cte(f"{name}_gone")


def _channels_in(language: str) -> Select[int]:
    return (
        select(Channel.id)
        .join(Organization, Organization.id == Channel.organization_id)
        .where(Organization.language == language)
    )
