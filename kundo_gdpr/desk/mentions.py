"""The subject's address and name inside other people's items.

An address is replaced by a marker in the channel's language; a name is only
counted, for an agent to review, because it may belong to someone else.
Candidates are found in SQL (lower(column) LIKE), in id-keyed pages of
`PAGE` rows, and the exact, case-insensitive replacement is made in Python,
so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select, true, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from kundo_gdpr import i18n
from kundo_gdpr.desk.protocol import Mention
from kundo_gdpr.models import (
    Channel,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
)

PAGE = 1000
# A longer list is not something an agent reads; the counts still say how many.
LISTED = 1000


@dataclass(frozen=True)
class Target:
    """Text columns of one table that may mention the subject, and who owns a row."""

    kind: str
    model: Any
    columns: tuple[InstrumentedAttribute[Any], ...]
    channel: InstrumentedAttribute[int]
    owner: InstrumentedAttribute[Any]
    join: tuple[Any, Any] | None = None


TARGETS = (
    Target("mail", MailConversation, (MailConversation.subject,), MailConversation.channel_id,
           MailConversation.customer_email),
    Target("mail", MailMessage, (MailMessage.from_addr, MailMessage.to_addr, MailMessage.body),
           MailConversation.channel_id, MailConversation.customer_email,
           (MailConversation, MailConversation.id == MailMessage.conversation_id)),
    Target("forum", ForumPost, (ForumPost.title, ForumPost.body), ForumPost.channel_id,
           ForumPost.author_email),
    Target("chat", ChatMessage, (ChatMessage.body,), ChatSession.channel_id,
           ChatSession.visitor_email, (ChatSession, ChatSession.id == ChatMessage.session_id)),
)


def address_pattern(address: str) -> re.Pattern[str]:
    """The exact address, any case, not as part of a longer address."""
    return re.compile(rf"(?<![\w.+-]){re.escape(address)}(?![\w-]|\.\w)", re.IGNORECASE)


def replace_addresses(
    session: Session, subject: str, channel_ids: Sequence[int], kind: str, *, dry_run: bool
) -> int:
    """Replace the subject's address in others' items; return how many items changed."""
    changed = 0
    for language, ids in _by_language(session, channel_ids).items():
        marker = i18n.text(language, "redacted_mention")
        for target in (t for t in TARGETS if t.kind == kind):
            changed += _replace(session, target, subject, ids, marker, dry_run)
    return changed


def count_names(
    session: Session, subject: str, names: Sequence[str], channel_ids: Sequence[int], kind: str
) -> int:
    """Others' items whose text contains one of the subject's stored names."""
    if not names or not channel_ids:
        return 0
    total = 0
    for target in (t for t in TARGETS if t.kind == kind):
        hit = or_(*(_like(c, n) for c in target.columns for n in names))
        stmt = _candidates(target, subject, channel_ids, hit)
        total += int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    return total


def stored_names(session: Session, subject: str, channel_ids: Sequence[int]) -> list[str]:
    """The names the desk has on file for the subject in these channels."""
    found: set[str] = set()
    for column, email, channel in (
        (MailConversation.customer_name, MailConversation.customer_email,
         MailConversation.channel_id),
        (ForumPost.author_name, ForumPost.author_email, ForumPost.channel_id),
        (ChatSession.visitor_name, ChatSession.visitor_email, ChatSession.channel_id),
    ):
        stmt = select(column).distinct().where(
            func.lower(email) == subject.lower(), channel.in_(list(channel_ids)),
            column.is_not(None),
        )
        found.update(n.strip() for n in session.scalars(stmt) if n and len(n.strip()) >= 3)
    return sorted(found)


def find(
    session: Session, subject: str, names: Sequence[str], channel_ids: Sequence[int], kind: str
) -> list[Mention]:
    """Others' items holding the address or one of the names, at most `LISTED` per kind."""
    found: list[Mention] = []
    pattern = address_pattern(subject)
    for target in (t for t in TARGETS if t.kind == kind):
        table = target.model.__tablename__
        hit = or_(*(_like(c, subject) for c in target.columns))
        for rows in _pages(session, target, subject, channel_ids, hit):
            found += [Mention(kind, table, r[0], "address") for r in rows
                      if any(v and pattern.search(v) for v in r[1:])]
            if len(found) >= LISTED:
                break
        if names:
            named = or_(*(_like(c, n) for c in target.columns for n in names))
            stmt = _candidates(target, subject, channel_ids, named)
            found += [Mention(kind, table, i, "name")
                      for i in session.scalars(stmt.order_by(target.model.id).limit(LISTED))]
    return found[:LISTED]


def _replace(
    session: Session, target: Target, subject: str, channel_ids: Sequence[int], marker: str,
    dry_run: bool,
) -> int:
    pattern = address_pattern(subject)
    hit = or_(*(_like(c, subject) for c in target.columns))
    changed = 0
    for rows in _pages(session, target, subject, channel_ids, hit):
        updates = []
        for row in rows:
            values = {c.key: row[i + 1] for i, c in enumerate(target.columns)}
            new = {k: pattern.sub(marker, v) for k, v in values.items() if v is not None}
            if any(new[k] != values[k] for k in new):
                updates.append({"id": row[0], **new})
        changed += len(updates)
        if updates and not dry_run:
            session.execute(update(target.model), updates)
    return changed


def _pages(
    session: Session, target: Target, subject: str, channel_ids: Sequence[int],
    hit: ColumnElement[bool],
) -> Iterator[list[Any]]:
    # Keyset pages: a candidate the exact pattern rejects (malice@…) still
    # matches LIKE, so paging by "what still matches" would never end.
    last = 0
    while True:
        stmt = _candidates(target, subject, channel_ids, hit, target.model.id > last)
        stmt = stmt.add_columns(*target.columns).order_by(target.model.id).limit(PAGE)
        rows = list(session.execute(stmt))
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _candidates(
    target: Target, subject: str, channel_ids: Sequence[int], hit: ColumnElement[bool],
    after: ColumnElement[bool] | None = None,
) -> Any:
    stmt = select(target.model.id)
    if target.join is not None:
        stmt = stmt.join(*target.join)
    return stmt.where(
        target.channel.in_(list(channel_ids)),
        func.coalesce(func.lower(target.owner), "") != subject.lower(),
        hit,
        true() if after is None else after,
    )


def _like(column: InstrumentedAttribute[Any], needle: str) -> ColumnElement[bool]:
    if not needle:
        return false()
    escaped = needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


def _by_language(session: Session, channel_ids: Sequence[int]) -> dict[str, list[int]]:
    stmt = (
        select(Channel.id, Organization.language)
        .join(Organization, Organization.id == Channel.organization_id)
        .where(Channel.id.in_(list(channel_ids)))
    )
    groups: dict[str, list[int]] = {}
    for channel_id, language in session.execute(stmt):
        groups.setdefault(language, []).append(channel_id)
    return groups
