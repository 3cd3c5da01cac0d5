"""Other people's items that name the subject.

An item of someone else that holds the subject's exact address has the
address replaced by a marker (in the channel's language); one that holds a
name the desk has on file for the subject is only listed, for an agent to
review, because the name may belong to someone else.

One pass per table finds both: candidates come from SQL (the address or a
name as a substring, case-insensitive: ILIKE on PostgreSQL, served by the
pg_trgm indexes; on SQLite MATCH on the trigram FTS5 tables of migration
0003, or LIKE over every row without them; no lower() copy of every body is
made), in id-keyed pages of `PAGE` rows; the exact match and the replacement
are made in Python, so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    false,
    func,
    or_,
    select,
    text,
    true,
    union,
    union_all,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import TextClause

from kundo_gdpr import i18n, identity
from kundo_gdpr.desk.forms import address_pattern, fts_terms, like_patterns, phrase
from kundo_gdpr.desk.mention_targets import KEY_OF, Target, targets, texts
from kundo_gdpr.desk.protocol import Mention, Strategy
from kundo_gdpr.models import (
    Channel,
    ChatSession,
    ForumPost,
    MailConversation,
    Organization,
)

PAGE = 2000
# A longer list is not something an agent reads; the counts still say how many.
LISTED = 1000


@dataclass(frozen=True)
class Page:
    """One page of the scan: items changed and named, what to list, where to resume."""

    changed: int
    named: int
    listed: list[Mention]
    cursor: tuple[str, int]
    rows: int  # read on this page


def scan(
    session: Session, subject: str, names: Sequence[str], channel_ids: Sequence[int],
    kind: str, strategy: Strategy, *, dry_run: bool, cursor: dict[str, int] | None = None,
) -> Iterator[Page]:
    """Others' items in these channels naming the subject, a page at a time.

    Address mentions are replaced (unless `dry_run`) in the caller's
    transaction before the page is yielded; name mentions are only counted
    and listed. Paging resumes after `cursor[table]`.
    """
    if not channel_ids:
        return
    markers: dict[int, str] = {}  # looked up with the first page: most scans find none
    pattern = address_pattern(subject)
    folded = [n.casefold() for n in names]
    for target in targets(kind, strategy):
        hits = [_like(session, c, p) for c in target.columns for p in like_patterns(subject)]
        hits += _by_key(session, target, subject)
        hits += [_contains(session, c, n) for c in texts(target) for n in names]
        last = (cursor or {}).get(target.table, 0)
        terms = fts_terms(subject)
        searched = (None if terms is None or any(len(n) < 3 for n in names)
                    else [*terms, *(phrase(n) for n in names)])
        for rows in _pages(session, target, subject, channel_ids, hits, last, searched):
            markers = markers or _markers(session, channel_ids)
            yield _page(session, target, rows, pattern, folded, markers, dry_run)


def _page(
    session: Session, target: Target, rows: list[Any], pattern: re.Pattern[str],
    names: list[str], markers: dict[int, str], dry_run: bool,
) -> Page:
    updates: list[dict[str, Any]] = []
    listed: list[Mention] = []
    named = 0
    for row in rows:
        values = {c.key: row[i + 2] for i, c in enumerate(target.columns)}
        new = {k: pattern.sub(markers[row[1]], v) for k, v in values.items() if v}
        if any(new[k] != values[k] for k in new):
            keys = {KEY_OF[k]: identity.key(v) for k, v in new.items() if k in KEY_OF}
            updates.append({"id": row[0], **new, **keys})
            listed.append(Mention(target.kind, target.table, row[0], "address"))
        text = "\n".join(values[c.key] or "" for c in texts(target)).casefold()
        if any(n in text for n in names):
            named += 1
            listed.append(Mention(target.kind, target.table, row[0], "name"))
    if updates and not dry_run:
        session.execute(update(target.model), updates)
    return Page(len(updates), named, listed, (target.table, rows[-1][0]), len(rows))


def stored_names(session: Session, subject: str, channel_ids: Sequence[int]) -> list[str]:
    """The names the desk has on file for the subject in these channels."""
    # One statement (a round trip, not three); UNION drops the duplicates.
    stmt = union(*(
        select(column).where(email == subject,
                             channel.in_(list(channel_ids)), column.is_not(None))
        for column, email, channel in (
            (MailConversation.customer_name, MailConversation.customer_key,
             MailConversation.channel_id),
            (ForumPost.author_name, ForumPost.author_key, ForumPost.channel_id),
            (ChatSession.visitor_name, ChatSession.visitor_key, ChatSession.channel_id),
        )
    ))
    found = {n.strip() for n in session.scalars(stmt) if n and len(n.strip()) >= 3}
    return sorted(found)


def _pages(
    session: Session, target: Target, subject: str, channel_ids: Sequence[int],
    hits: list[ColumnElement[bool]], last: int, needles: Sequence[str] | None,
) -> Iterator[list[Any]]:
    # The candidates' ids first, then their texts a page at a time. Keyset by
    # id: a candidate the exact pattern rejects (malice@…) still matches the
    # substring test, and a resumed scan starts after the last committed page.
    found = _candidates(session, target, subject, channel_ids, hits, last, needles)
    for start in range(0, len(found), PAGE):
        page = found[start:start + PAGE]
        rows = select(target.model.id, target.channel, *target.columns)
        if target.join is not None:
            rows = rows.join(*target.join)
        got = list(session.execute(rows.where(target.model.id.in_(page))
                                   .order_by(target.model.id)))
        if got:  # empty only if another writer removed the whole page meanwhile
            yield got


def _candidates(
    session: Session, target: Target, subject: str, channel_ids: Sequence[int],
    hits: list[ColumnElement[bool]], last: int, needles: Sequence[str] | None,
) -> list[int]:
    def matching(hit: ColumnElement[bool]) -> Select[tuple[int]]:
        ids = select(target.model.id)
        if target.join is not None:
            ids = ids.join(*target.join)
        ids = ids.where(target.channel.in_(list(channel_ids)), hit, target.model.id > last)
        # IS NOT TRUE, not NOT: a NULL owner key makes the test NULL, and
        # NOT NULL would drop the row as if it were the subject's.
        return ids.where(target.gone(subject).is_not(true()))

    # The texts are searched on their own table alone, and channel and owner
    # checked only for the few rows found: joined first, every row of the
    # owner's table would be read as well.
    found: set[int] = set()
    if session.get_bind().dialect.name == "postgresql":
        # One statement: a UNION of one search per column and needle, each
        # answered by its trigram index (OR-ed, the planner tends to read
        # every row instead), computed first (MATERIALIZED), then the few
        # rows found checked for channel and owner.
        union = union_all(*(select(target.model.id).where(hit, target.model.id > last)
                            for hit in hits))
        hits_cte = union.cte("hits").prefix_with("MATERIALIZED")
        few = target.model.id.in_(select(hits_cte.c.id))
        return list(session.scalars(matching(few).order_by(target.model.id)))
    # SQLite: the trigram FTS5 table of migration 0003 when there is one;
    # without it, one pass over every row tests every needle.
    fts = _fts_query(session, target, needles)
    if fts is not None:
        found.update(session.scalars(fts, {"q": " OR ".join(needles or ()), "last": last}))
    else:
        found.update(session.scalars(
            select(target.model.id).where(or_(*hits), target.model.id > last)))
    if not found:
        return []
    ordered = sorted(found)
    checked: list[int] = []
    for start in range(0, len(ordered), PAGE):
        chunk = target.model.id.in_(ordered[start:start + PAGE])
        checked += session.scalars(matching(chunk).order_by(target.model.id))
    return checked


def _fts_query(
    session: Session, target: Target, terms: Sequence[str] | None
) -> TextClause | None:
    """Ids whose texts hold one of the terms, from the table's trigram FTS5 index.

    None when the table has no such index (a desk not made by our migrations)
    or a term is too short for trigrams (`terms` None: it would match
    nothing). The index folds case like LIKE does, and more (not only ASCII):
    a superset of LIKE's rows, each checked exactly afterwards. Names are
    looked for in every column (address columns too): a superset again,
    sorted out by the check.
    """
    fts = f"{target.table}_fts"
    if terms is None or not _has_table(session, fts):
        return None
    return text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :q AND rowid > :last")


def _has_table(session: Session, name: str) -> bool:
    return session.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                            {"n": name}).first() is not None


def _like(
    session: Session, column: InstrumentedAttribute[Any], pattern: str
) -> ColumnElement[bool]:
    """`column` matches a LIKE pattern (escape "\\"), in any case.

    PostgreSQL: an address column's value that is simply its key is not
    searched here (its trigram index does not hold it: migration 0016) but
    found by the key (`_by_key`).
    """
    if session.get_bind().dialect.name != "postgresql":
        return column.like(pattern, escape="\\")
    if column.key in KEY_OF:
        key = getattr(column.class_, KEY_OF[column.key])
        return func.nullif(column, key).ilike(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


def _by_key(session: Session, target: Target, subject: str) -> list[ColumnElement[bool]]:
    """PostgreSQL: the rows whose address column is the subject's address as its key
    (what `_like` leaves to the key's index)."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    return [getattr(target.model, KEY_OF[c.key]) == subject
            for c in target.columns if c.key in KEY_OF]


def _contains(
    session: Session, column: InstrumentedAttribute[Any], needle: str
) -> ColumnElement[bool]:
    if not needle:
        return false()
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if session.get_bind().dialect.name == "postgresql":
        return column.ilike(f"%{escaped}%", escape="\\")
    # SQLite's LIKE already ignores (ASCII) case; lower(column) would copy every body.
    return column.like(f"%{escaped}%", escape="\\")


def _markers(session: Session, channel_ids: Sequence[int]) -> dict[int, str]:
    """The mention marker for each channel, in its organization's language."""
    stmt = (
        select(Channel.id, Organization.language)
        .join(Organization, Organization.id == Channel.organization_id)
        .where(Channel.id.in_(list(channel_ids)))
    )
    return {cid: i18n.text(lang, "redacted_mention") for cid, lang in session.execute(stmt)}
