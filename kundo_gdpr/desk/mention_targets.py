"""Which of other people's items may mention the subject, and in which columns.

The scan (kundo_gdpr.desk.mentions) and the review of others' files
(kundo_gdpr.desk.reviews) read the same tables and leave out the same rows:
the ones the erase takes away as the subject's own (kundo_gdpr.desk.ownership).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from kundo_gdpr.desk import ownership
from kundo_gdpr.desk.protocol import Strategy
from kundo_gdpr.models import ChatMessage, ChatSession, ForumPost, MailConversation, MailMessage
from kundo_gdpr.vocabulary import ChannelKind

# Columns that hold addresses only: searched for the subject's address, not names.
ADDRESS_COLUMNS = frozenset({"from_addr", "to_addr"})
# Their key columns, set with them so the key never goes stale (kundo_gdpr.identity).
KEY_OF = {"from_addr": "from_key", "to_addr": "to_key"}


@dataclass(frozen=True)
class Target:
    """Text columns of one table that may mention the subject, and which of its
    rows the erase takes away as the subject's own (kundo_gdpr.desk.ownership):
    only the others are scanned, before the erase (preview) and after it alike.
    """

    kind: str
    model: Any
    columns: tuple[InstrumentedAttribute[Any], ...]
    channel: InstrumentedAttribute[int]
    # The rows the strategy erases (given the subject's key): not mentions.
    gone: Callable[[str], ColumnElement[bool]]
    join: tuple[Any, Any] | None = None

    @property
    def table(self) -> str:
        return str(self.model.__tablename__)


def targets(kind: str, strategy: Strategy) -> tuple[Target, ...]:
    if kind == ChannelKind.FORUM:
        threads = strategy.forum == "delete_threads"
        return (Target(ChannelKind.FORUM, ForumPost, (ForumPost.title, ForumPost.body),
                       ForumPost.channel_id,
                       lambda s: or_(ForumPost.author_key == s, in_subjects_threads(s))
                       if threads else ForumPost.author_key == s),)
    if kind == ChannelKind.CHAT:
        return (Target(ChannelKind.CHAT, ChatMessage, (ChatMessage.body,), ChatSession.channel_id,
                       ownership.chat_message,
                       (ChatSession, ChatSession.id == ChatMessage.session_id)),)
    by_message = strategy.mail == "messages"
    join = (MailConversation, MailConversation.id == MailMessage.conversation_id)
    return (
        Target(ChannelKind.MAIL, MailConversation, (MailConversation.subject,),
               MailConversation.channel_id,
               (lambda s: false()) if by_message else lambda s: and_(
                   MailConversation.customer_key == s,
                   ~ownership.others_mail_in_conversation(s))),
        Target(ChannelKind.MAIL, MailMessage,
               (MailMessage.from_addr, MailMessage.to_addr, MailMessage.body),
               MailConversation.channel_id,
               lambda s: ownership.mail_message(s, sent_only=by_message), join),
    )


def texts(target: Target) -> tuple[InstrumentedAttribute[Any], ...]:
    """The columns a name can be mentioned in: not the address fields."""
    return tuple(c for c in target.columns if c.key not in ADDRESS_COLUMNS)


def in_subjects_threads(subject: str) -> ColumnElement[bool]:
    opener = aliased(ForumPost)
    # topic_id IS NOT NULL first: NOT (NULL IN (…)) is NULL, which would drop openers.
    return and_(ForumPost.topic_id.is_not(None), ForumPost.topic_id.in_(select(opener.id).where(
        opener.author_key == subject, opener.topic_id.is_(None))))
