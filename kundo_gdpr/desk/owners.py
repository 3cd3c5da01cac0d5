"""Who owns items in some channels: the distinct normalised owner keys.

Read by the erasure ledger's replay, which hashes each distinct key once and
joins the hashes against the ledger, instead of looking up every ledger entry
in every table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from kundo_gdpr import identity
from kundo_gdpr.desk import keys
from kundo_gdpr.models import ChatMessage, ChatSession, ForumPost, MailConversation, MailMessage


def owner_keys(session: Session, channel_ids: Sequence[int]) -> Iterator[tuple[int, str]]:
    """(channel id, owner key) for every distinct owner of an item in these channels."""
    if not channel_ids:
        return
    keys.catch_up(session)  # rows written without a key (raw SQL, a re-import) count too
    ids = list(channel_ids)
    parts: list[Any] = [
        select(ForumPost.channel_id, ForumPost.author_key).where(ForumPost.channel_id.in_(ids)),
        select(MailConversation.channel_id, MailConversation.customer_key)
        .where(MailConversation.channel_id.in_(ids)),
        *(select(MailConversation.channel_id, column)
          .join(MailMessage, MailMessage.conversation_id == MailConversation.id)
          .where(MailConversation.channel_id.in_(ids))
          for column in (MailMessage.from_key, MailMessage.to_key)),
        select(ChatSession.channel_id, ChatSession.visitor_key)
        .where(ChatSession.channel_id.in_(ids)),
        select(ChatSession.channel_id, ChatMessage.sender_key)
        .join(ChatMessage, ChatMessage.session_id == ChatSession.id)
        .where(ChatSession.channel_id.in_(ids)),
    ]
    for row in session.execute(union(*parts)):  # UNION: distinct
        channel_id, key = row[0], row[1]
        if key and key not in (identity.NONE, identity.SEVERAL):
            yield channel_id, key
