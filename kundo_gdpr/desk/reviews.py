"""What an agent reviews beside name mentions: never changed, only listed.

- Items whose owner is a `+tag` variant of the subject (anna+shop@x.se for
  anna@x.se): maybe the same person, maybe not; the address is not theirs
  by the key, so nothing is erased on a guess.
- Other people's text-like attachments that hold the subject's address in
  any written form: rewriting someone else's file is not ours to do.

Both are counted as `name_mentions` and listed with `found` "tag" or
"attachment"; the same rows before the erase (preview) and after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from kundo_gdpr.desk.forms import address_pattern
from kundo_gdpr.desk.mention_targets import targets  # the same `gone` rules as the scan
from kundo_gdpr.desk.protocol import Mention, Strategy
from kundo_gdpr.models import (
    Attachment,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
)
from kundo_gdpr.vocabulary import ChannelKind

TEXT_TYPES = ("text/%", "application/json", "application/xml", "application/csv",
              "message/rfc822", "application/x-ndjson", "application/ld+json")
TEXT_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".xml", ".html", ".htm", ".eml", ".md",
                 ".log", ".ics", ".vcf", ".ndjson", ".yaml", ".yml")
# Read at most this much of one file: an address past it is not found.
READ = 10 * 1024 * 1024


def review(
    session: Session, key: str, channel_ids: Sequence[int], kind: str, strategy: Strategy
) -> list[Mention]:
    """The kind's items for review: `+tag` owners, then others' text attachments."""
    if not channel_ids:
        return []
    return [*tagged(session, key, channel_ids, kind), *attached(session, key, channel_ids, kind,
                                                                  strategy)]


def tagged(session: Session, key: str, channel_ids: Sequence[int], kind: str) -> list[Mention]:
    local, _, domain = key.rpartition("@")
    if not local or "+" in local:
        return []
    owners = _owners(kind)
    parts = []
    for n, (model, column, channel, join) in enumerate(owners):
        # A key range ("anna+" up to "anna,"), served by the key's index,
        # then the domain among the few rows in it.
        escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = select(literal(n).label("owner"), model.id.label("id")).where(
            column >= f"{local}+", column < f"{local},",
            column.like(f"%@{escaped}", escape="\\"), channel.in_(list(channel_ids)))
        if join is not None:
            stmt = stmt.join(*join)
        parts.append(stmt)
    # One round trip for the kind's owner columns, in their order.
    both = union_all(*parts).subquery()
    rows = session.execute(select(both.c.owner, both.c.id).order_by(both.c.owner, both.c.id))
    return [Mention(kind, owners[n][0].__tablename__, i, "tag") for n, i in rows]


def _owners(kind: str) -> list[tuple[Any, Any, Any, tuple[Any, Any] | None]]:
    if kind == ChannelKind.FORUM:
        return [(ForumPost, ForumPost.author_key, ForumPost.channel_id, None)]
    if kind == ChannelKind.MAIL:
        conversation = (MailConversation, MailConversation.id == MailMessage.conversation_id)
        return [(MailConversation, MailConversation.customer_key, MailConversation.channel_id,
                 None),
                (MailMessage, MailMessage.from_key, MailConversation.channel_id, conversation)]
    session_join = (ChatSession, ChatSession.id == ChatMessage.session_id)
    return [(ChatSession, ChatSession.visitor_key, ChatSession.channel_id, None),
            (ChatMessage, ChatMessage.sender_key, ChatSession.channel_id, session_join)]


def attached(
    session: Session, key: str, channel_ids: Sequence[int], kind: str, strategy: Strategy
) -> list[Mention]:
    """Others' text-like attachments in these channels that hold the address."""
    local = key.rpartition("@")[0]
    if len(local) < 1:
        return []
    item = targets(kind, strategy)[-1]  # the items (not the conversation)
    stmt = (select(Attachment.id, func.substr(Attachment.data, 1, READ))
            .join(item.model, _attachment_of(kind) == item.model.id))
    if item.join is not None:
        stmt = stmt.join(*item.join)
    stmt = stmt.where(item.channel.in_(list(channel_ids)), _text_like(),
                      _holds_any(session, [local, local.upper(), local.capitalize()]),
                      item.gone(key).is_not(true()))
    pattern = address_pattern(key)
    found = []
    for attachment_id, data in session.execute(stmt.order_by(Attachment.id)):
        if data is not None and pattern.search(bytes(data).decode("utf-8", "replace")):
            found.append(Mention(kind, "attachments", attachment_id, "attachment"))
    return found


def _attachment_of(kind: str) -> Any:
    columns: dict[str, Any] = {ChannelKind.FORUM: Attachment.forum_post_id,
                               ChannelKind.MAIL: Attachment.mail_message_id,
                               ChannelKind.CHAT: Attachment.chat_message_id}
    return columns[kind]


def _text_like() -> ColumnElement[bool]:
    content_type = func.lower(Attachment.content_type)
    name = func.lower(Attachment.filename)
    return or_(*(content_type.like(t) for t in TEXT_TYPES),
               *(name.like(f"%{s}") for s in TEXT_SUFFIXES))


def _holds_any(session: Session, parts: list[str]) -> ColumnElement[bool]:
    """The file's bytes hold one of these (a byte search in SQL; exact check after)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    tests = []
    for part in dict.fromkeys(parts):
        needle = bindparam(None, part.encode(), type_=LargeBinary)
        if postgres:
            tests.append(func.position(needle.op("IN")(Attachment.data)) > 0)
        else:
            tests.append(func.instr(Attachment.data, needle) > 0)
    return or_(*tests) if tests else and_(true())
