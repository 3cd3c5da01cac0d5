"""Erase on the sample desk: nothing of the subject left, nothing of anyone else touched."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, String, Text, func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.desk import ChannelRef, Counts, Strategy, open_desk
from kundo_gdpr.desk.mentions import address_pattern
from kundo_gdpr.desk.protocol import DEFAULT
from kundo_gdpr.desk.sql import add, zero_counts
from kundo_gdpr.models import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
    Request,
)
from kundo_gdpr.stages import decide, run
from tests.helpers import drop, request_mail
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for

ALICE = "alice@example.com"
TABLES = (ForumPost, MailConversation, MailMessage, ChatSession, ChatMessage, Attachment)
Snapshot = dict[tuple[str, int], tuple[Any, ...]]


def snapshot(session: Session) -> Snapshot:
    """Every desk item row, keyed by (table, id)."""
    rows: Snapshot = {}
    for model in TABLES:
        table = model.__table__
        for row in session.execute(select(table)):
            rows[(table.name, row.id)] = tuple(row)
    return rows


def alices_rows(session: Session, channel_ids: list[int]) -> set[tuple[str, int]]:
    """Keys of every row that is Alice's or hangs off one of her items."""
    conversations = select(MailConversation.id).where(
        func.lower(MailConversation.customer_email) == ALICE,
        MailConversation.channel_id.in_(channel_ids))
    messages = select(MailMessage.id).where(MailMessage.conversation_id.in_(conversations))
    sessions = select(ChatSession.id).where(
        func.lower(ChatSession.visitor_email) == ALICE, ChatSession.channel_id.in_(channel_ids))
    chats = select(ChatMessage.id).where(ChatMessage.session_id.in_(sessions))
    posts = select(ForumPost.id).where(
        func.lower(ForumPost.author_email) == ALICE, ForumPost.channel_id.in_(channel_ids))
    attachments = select(Attachment.id).where(
        Attachment.mail_message_id.in_(messages) | Attachment.chat_message_id.in_(chats)
        | Attachment.forum_post_id.in_(posts))
    keys: set[tuple[str, int]] = set()
    for name, stmt in (("mail_conversations", conversations), ("mail_messages", messages),
                       ("chat_sessions", sessions), ("chat_messages", chats),
                       ("forum_posts", posts), ("attachments", attachments)):
        keys.update((name, i) for i in session.scalars(stmt))
    return keys


def traces(session: Session, channel_ids: list[int]) -> list[str]:
    """Every text value in the covered channels that still holds Alice's exact address."""
    pattern = address_pattern(ALICE)
    scoped = {
        ForumPost: select(ForumPost).where(ForumPost.channel_id.in_(channel_ids)),
        MailConversation: select(MailConversation).where(
            MailConversation.channel_id.in_(channel_ids)),
        MailMessage: select(MailMessage).join(MailConversation).where(
            MailConversation.channel_id.in_(channel_ids)),
        ChatSession: select(ChatSession).where(ChatSession.channel_id.in_(channel_ids)),
        ChatMessage: select(ChatMessage).join(ChatSession).where(
            ChatSession.channel_id.in_(channel_ids)),
    }
    found = []
    for model, stmt in scoped.items():
        columns = [c.key for c in model.__table__.columns if isinstance(c.type, String | Text)]
        for item in session.scalars(stmt):
            for key in columns:
                value = getattr(item, key)
                if value and pattern.search(value):
                    found.append(f"{model.__tablename__}.{key}#{item.id}: {value!r}")
    return found


def covered(session: Session) -> list[ChannelRef]:
    org = session.scalars(select(Organization).where(Organization.slug == "cykelbolaget")).one()
    return open_desk("sql", session).organization_channels(org.id, ("mail", "forum", "chat"))


def channel_of(session: Session, kind: str) -> int:
    return session.scalars(select(Channel.id).join(Organization).where(
        Organization.slug == "cykelbolaget", Channel.kind == kind)).one()


@pytest.fixture
def mentions(world: None, factory: sessionmaker[Session]) -> dict[str, int]:
    """Other people's items naming Alice's address or name, plus an attachment
    on each of her forum posts and chat messages."""
    with factory.begin() as session:
        forum, chat = channel_of(session, "forum"), channel_of(session, "chat")
        mail = channel_of(session, "mail")
        post = ForumPost(channel_id=forum, author_email="kund1@example.net", author_name="Kund 1",
                         title="Fråga ALICE@example.com", body="Maila Alice@Example.com, hon vet.")
        near = ForumPost(channel_id=forum, author_email="kund2@example.net",
                         body="malice@example.com och alice@example.com.au är andra.")
        named = ForumPost(channel_id=forum, author_email="kund3@example.net",
                          body="Alice Andersson hade samma problem.")
        session.add_all([post, near, named])
        other_chat = session.scalars(select(ChatSession).where(
            ChatSession.channel_id == chat, ChatSession.visitor_email != ALICE)).first()
        other_conv = session.scalars(select(MailConversation).where(
            MailConversation.channel_id == mail, MailConversation.customer_email != ALICE)).first()
        assert other_chat and other_conv
        said = ChatMessage(session_id=other_chat.id, sender="visitor",
                           body="Min fru alice@example.com har kontot.")
        wrote = MailMessage(conversation_id=other_conv.id, direction="in",
                            body="Kopia till alice@example.com.", to_addr="alice@example.com")
        session.add_all([said, wrote])
        session.flush()
        for item in session.scalars(select(ForumPost).where(ForumPost.author_email == ALICE,
                                                            ForumPost.channel_id == forum)):
            session.add(Attachment(forum_post_id=item.id, filename="bild.png", data=b"png"))
        for message in session.scalars(select(ChatMessage).join(ChatSession).where(
                ChatSession.visitor_email == ALICE, ChatSession.channel_id == chat,
                ChatMessage.sender == "visitor")):
            session.add(Attachment(chat_message_id=message.id, filename="skärm.png", data=b"x"))
        return {"forum_posts": post.id, "near": near.id, "chat_messages": said.id,
                "mail_messages": wrote.id, "named": named.id}


def erase(factory: sessionmaker[Session], strategy: Strategy = DEFAULT) -> Counts:
    """The whole erase in one transaction (the batches' counts added up)."""
    with factory.begin() as session:
        counts: Counts = zero_counts(covered(session), strategy)
        for step in open_desk("sql", session).erase(ALICE, covered(session), strategy):
            add(counts, step.counts)
        return counts


def test_erase_leaves_no_trace_of_the_subject_and_touches_only_what_it_reports(
    mentions: dict[str, int], factory: sessionmaker[Session]
) -> None:
    with factory() as session:
        channels = covered(session)
        ids = [c.id for c in channels]
        before, owned = snapshot(session), alices_rows(session, ids)
        preview = open_desk("sql", session).count(ALICE, channels)
        assert traces(session, ids)
    counts = erase(factory)
    assert counts == preview
    with factory() as session:
        after = snapshot(session)
        assert traces(session, ids) == []
        redacted = set(session.scalars(select(ForumPost.id).where(
            ForumPost.body == "[Inlägget har tagits bort på begäran.]")))
    gone = before.keys() - after.keys()
    changed = {k for k in after if after[k] != before[k]}
    mentioned = {(t, i) for t, i in mentions.items() if t not in ("near", "named")}
    assert gone == owned - {("forum_posts", i) for i in redacted}
    assert changed == mentioned | {("forum_posts", i) for i in redacted}
    assert counts["forum"]["redacted"] == len(redacted) == 1
    assert (counts["forum"]["mentions"], counts["chat"]["mentions"],
            counts["mail"]["mentions"]) == (1, 1, 1)
    assert counts["forum"]["name_mentions"] == 1
    posts = [k for k in owned if k[0] == "forum_posts"]
    assert counts["forum"]["attachments"] == len(posts) and counts["chat"]["attachments"] == 1
    with factory() as session:
        post = session.get(ForumPost, mentions["forum_posts"])
        assert post and post.body == "Maila [borttagen e-postadress], hon vet."
        assert post.title == "Fråga [borttagen e-postadress]"
        (opener,) = [session.get(ForumPost, i) for i in redacted]
        assert opener and (opener.author_email, opener.author_name, opener.author_ip) == (
            None, None, None)
        assert session.scalar(select(func.count()).select_from(ForumPost).where(
            ForumPost.topic_id == opener.id)) > 0
        assert session.scalar(select(func.count()).select_from(Attachment).where(
            Attachment.forum_post_id == opener.id)) == 0


def test_erasing_again_counts_nothing_and_changes_nothing(
    mentions: dict[str, int], factory: sessionmaker[Session]
) -> None:
    erase(factory)
    with factory() as session:
        first = snapshot(session)
    again = erase(factory)
    assert all(n == 0 for items in again.values() for n in items.values())
    with factory() as session:
        assert snapshot(session) == first


def test_preview_gives_the_counts_the_run_reports_and_changes_nothing(
    mentions: dict[str, int], config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    drop(config.path("var/inbox"), request_mail("eva@cykelbolaget.se", ERASE_ALICE), "r1")
    worker = worker_for(config, engine)
    run_all(worker)
    with factory() as session:
        before = snapshot(session)
        request = session.scalars(select(Request)).one()
        assert request.state == "needs_review"
        counts = run.preview(session, config, request)
        assert snapshot(session) == before
    assert counts[ALICE]["forum"]["mentions"] == 1
    with factory.begin() as session:
        decide.mark_approved(session, session.scalars(select(Request)).one(), "agent:test")
    run_all(worker)
    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "done" and request.result
        assert request.result["erase"] == counts
        listed = {(m["item"], m["id"], m["found"]) for m in request.result["mentions"][ALICE]}
        assert {(t, i, "address") for t, i in mentions.items()
                if t not in ("near", "named")} == {m for m in listed if m[2] == "address"}
        assert ("forum_posts", mentions["near"], "address") not in listed
        assert [m for m in listed if m[2] == "name"] == [("forum_posts", mentions["named"], "name")]


def test_a_sqlite_desk_without_the_trigram_tables_is_scanned_in_full(
    mentions: dict[str, int], engine: Engine, factory: sessionmaker[Session]
) -> None:
    """A host desk not made by our migrations has no FTS5 tables: every text is
    read instead (LIKE), and the same mentions are found and replaced."""
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL's trigram indexes are plain indexes: nothing to fall back from
    with engine.begin() as conn:
        for table in ("forum_posts", "mail_conversations", "mail_messages", "chat_messages"):
            for trigger in ("insert", "delete", "update"):
                conn.exec_driver_sql(f"DROP TRIGGER {table}_fts_{trigger}")
            conn.exec_driver_sql(f"DROP TABLE {table}_fts")
    counts = erase(factory)
    assert (counts["forum"]["mentions"], counts["chat"]["mentions"],
            counts["mail"]["mentions"]) == (1, 1, 1)
    assert counts["forum"]["name_mentions"] == 1
    with factory() as session:
        assert traces(session, [c.id for c in covered(session)]) == []
