"""Whose item is it: the one definition that count, erase, the mention scan and
export all use, as SQL over the reference schema.

A subject is matched by their key (kundo_gdpr.identity) and nothing else.

- Forum: a post is its author's.
- Mail: a message the subject sent (direction "in", their key as sender)
  is theirs; so is an agent's reply sent to them alone ("out", their key as
  recipient). In a conversation where they are the customer, a message with
  no sender (in) or no recipient (out) on record is theirs too. A message
  another customer wrote (cc'd, or merged into the thread), or an agent's
  reply to someone else or to several people, is not theirs, whoever the
  conversation's customer is.
- Chat: a visitor message is its sender's (`sender_email`; none on record:
  the session's visitor). The agent's messages in the subject's session are
  theirs unless another visitor wrote in that session too; then they stay
  with the others.

The conversation or session itself is the customer's: erased when none of
its messages is left, otherwise kept without their name, address and IP.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, union
from sqlalchemy.orm import aliased

from kundo_gdpr.identity import matches
from kundo_gdpr.models import ChatMessage, ChatSession, MailConversation, MailMessage


def _none(column: object) -> ColumnElement[bool]:
    """No single address on record (NULL, or a value that is not one)."""
    return func.coalesce(column, "") == ""


def _someone_else(column: object, key: str | None) -> ColumnElement[bool]:
    """An address on record that is not the subject's."""
    value = func.coalesce(column, "")
    return and_(value != "", value != (key or ""))


# -- mail --------------------------------------------------------------------------------


def mail_message(key: str | None, *, sent_only: bool = False) -> ColumnElement[bool]:
    """A mail message (joined with its conversation) is the subject's."""
    customer = matches(MailConversation.customer_key, key)
    sent = and_(MailMessage.direction == "in", or_(
        matches(MailMessage.from_key, key), and_(_none(MailMessage.from_key), customer)))
    if sent_only:
        return sent
    answered = and_(MailMessage.direction == "out", or_(
        matches(MailMessage.to_key, key), and_(_none(MailMessage.to_key), customer)))
    return or_(sent, answered)


def mail_message_ids(
    key: str | None, channel_ids: Sequence[int], *, sent_only: bool = False
) -> Select[int]:
    """Ids of the subject's mail messages in these channels: a union of
    index lookups (sender key, recipient key, the customer's conversations)."""
    if key is None:
        return select(MailMessage.id).where(false())
    in_channels = MailConversation.channel_id.in_(list(channel_ids))

    def part(*where: ColumnElement[bool]) -> Select[int]:
        return (select(MailMessage.id)
                .join(MailConversation, MailConversation.id == MailMessage.conversation_id)
                .where(in_channels, *where))

    parts = [
        part(MailMessage.from_key == key, MailMessage.direction == "in"),
        part(MailConversation.customer_key == key, MailMessage.direction == "in",
             _none(MailMessage.from_key)),
    ]
    if not sent_only:
        parts += [
            part(MailMessage.to_key == key, MailMessage.direction == "out"),
            part(MailConversation.customer_key == key, MailMessage.direction == "out",
                 _none(MailMessage.to_key)),
        ]
    ids = union(*parts).subquery()
    return select(ids.c.id).order_by(ids.c.id)


def others_mail_in_conversation(key: str | None) -> ColumnElement[bool]:
    """The (outer) conversation of the subject holds a message that is not theirs."""
    other = aliased(MailMessage)
    return exists().where(
        other.conversation_id == MailConversation.id,
        or_(and_(other.direction == "in", _someone_else(other.from_key, key)),
            and_(other.direction == "out", _someone_else(other.to_key, key))),
    )


# -- chat --------------------------------------------------------------------------------


def others_in_session(key: str | None) -> ColumnElement[bool]:
    """The (outer) chat session has a visitor message by someone other than the subject."""
    other = aliased(ChatMessage)
    return exists().where(other.session_id == ChatSession.id, other.sender == "visitor",
                          _someone_else(other.sender_key, key))


def chat_message(key: str | None) -> ColumnElement[bool]:
    """A chat message (joined with its session) is the subject's."""
    visitor = matches(ChatSession.visitor_key, key)
    return or_(
        and_(ChatMessage.sender == "visitor", or_(
            matches(ChatMessage.sender_key, key), and_(_none(ChatMessage.sender_key), visitor))),
        and_(ChatMessage.sender == "agent", visitor, ~others_in_session(key)),
    )


def chat_message_ids(key: str | None, channel_ids: Sequence[int]) -> Select[int]:
    """Ids of the subject's chat messages in these channels."""
    if key is None:
        return select(ChatMessage.id).where(false())
    in_channels = ChatSession.channel_id.in_(list(channel_ids))

    def part(*where: ColumnElement[bool]) -> Select[int]:
        return (select(ChatMessage.id)
                .join(ChatSession, ChatSession.id == ChatMessage.session_id)
                .where(in_channels, *where))

    ids = union(
        part(ChatMessage.sender_key == key, ChatMessage.sender == "visitor"),
        part(ChatSession.visitor_key == key, ChatMessage.sender == "visitor",
             _none(ChatMessage.sender_key)),
        part(ChatSession.visitor_key == key, ChatMessage.sender == "agent",
             ~others_in_session(key)),
    ).subquery()
    return select(ids.c.id).order_by(ids.c.id)
