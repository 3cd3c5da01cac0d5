"""The erase strategies per channel kind, chosen in config section [erase]."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import config as config_module
from kundo_gdpr.desk import Strategy, open_desk
from kundo_gdpr.models import Attachment, ForumPost, MailConversation, MailMessage
from tests.test_erase import (
    ALICE,
    alices_rows,
    channel_of,
    covered,
    erase,
    mentions,
    snapshot,
    traces,
)

__all__ = ["mentions"]  # the fixture, used by name
MARKER = "[borttagen e-postadress]"


def test_the_defaults_are_the_issues(tmp_path: Path) -> None:
    assert config_module.Config().erase == Strategy("conversations", "posts", "sessions")
    path = tmp_path / "config.toml"
    path.write_text("[erase]\nmail = 'everything'\n", encoding="utf-8")
    with pytest.raises(config_module.ConfigError, match=r"erase\.mail"):
        config_module.load(path)


def test_mail_messages_deletes_only_what_the_subject_sent_and_keeps_the_agents_side(
    mentions: dict[str, int], factory: sessionmaker[Session]
) -> None:
    strategy = Strategy(mail="messages")
    with factory() as session:
        channels = covered(session)
        ids = [c.id for c in channels]
        mail = channel_of(session, "mail")
        before = snapshot(session)
        (conversation,) = session.scalars(select(MailConversation.id).where(
            MailConversation.channel_id == mail, MailConversation.customer_email == ALICE))
        sent = set(session.scalars(select(MailMessage.id).join(MailConversation).where(
            MailConversation.channel_id == mail, MailMessage.from_addr == ALICE)))
        answers = set(session.scalars(select(MailMessage.id).where(
            MailMessage.conversation_id == conversation)).all()) - sent
        preview = open_desk("sql", session).count(ALICE, channels, strategy)
    counts = erase(factory, strategy)
    assert counts == preview
    assert counts["mail"]["messages"] == len(sent) == 1
    assert counts["mail"]["anonymised"] == 1 and "conversations" not in counts["mail"]
    # The answer quoting Alice is someone else's item now: her address in it is replaced.
    assert counts["mail"]["mentions"] == 1 + len(answers)
    with factory() as session:
        assert traces(session, ids) == []
        kept = session.get(MailConversation, conversation)
        assert kept and (kept.customer_email, kept.customer_name) == (None, None)
        left = set(session.scalars(select(MailMessage.id).where(
            MailMessage.conversation_id == conversation)))
        assert left == answers
        assert {m.to_addr for m in session.scalars(
            select(MailMessage).where(MailMessage.id.in_(answers)))} == {MARKER}
        assert session.scalar(select(func.count()).select_from(Attachment).where(
            Attachment.mail_message_id.in_(sent))) == 0
        after = snapshot(session)
    gone = before.keys() - after.keys()
    assert {k for k in gone if k[0].startswith("mail_")} == {("mail_messages", i) for i in sent}


def test_forum_delete_threads_takes_the_subjects_threads_whole(
    mentions: dict[str, int], factory: sessionmaker[Session]
) -> None:
    strategy = Strategy(forum="delete_threads")
    with factory() as session:
        channels = covered(session)
        ids = [c.id for c in channels]
        forum = channel_of(session, "forum")
        before, owned = snapshot(session), alices_rows(session, ids)
        openers = set(session.scalars(select(ForumPost.id).where(
            ForumPost.channel_id == forum, ForumPost.author_email == ALICE,
            ForumPost.topic_id.is_(None))))
        replies = set(session.scalars(select(ForumPost.id).where(
            ForumPost.topic_id.in_(openers), ForumPost.author_email != ALICE)))
        assert replies, "the sample desk has others replying in Alice's threads"
        preview = open_desk("sql", session).count(ALICE, channels, strategy)
    counts = erase(factory, strategy)
    assert counts == preview
    assert counts["forum"]["replies"] == len(replies)
    assert "redacted" not in counts["forum"]
    with factory() as session:
        assert traces(session, ids) == []
        assert session.scalar(select(func.count()).select_from(ForumPost).where(
            ForumPost.id.in_(openers | replies))) == 0
        assert session.scalar(select(func.count()).select_from(ForumPost).where(
            ForumPost.body.like("%tagits bort%"))) == 0
        after = snapshot(session)
    gone = before.keys() - after.keys()
    reply_attachments = {k for k in gone if k[0] == "attachments" and k not in owned}
    assert gone == owned | {("forum_posts", i) for i in replies} | reply_attachments
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {(t, i) for t, i in mentions.items() if t not in ("near", "named")}


def test_the_pipeline_uses_the_configured_strategy(
    mentions: dict[str, int], tmp_path: Path, db_url: str, factory: sessionmaker[Session]
) -> None:
    from kundo_gdpr import db
    from tests.conftest import make_config
    from tests.helpers import drop, request_mail
    from tests.test_pipeline import ERASE_ALICE, run_all, worker_for

    config = make_config(tmp_path, db_url, policy={"auto_approve": True},
                         auth={"require": False}, erase={"mail": "messages"})
    drop(config.path("var/inbox"), request_mail("eva@cykelbolaget.se", ERASE_ALICE), "r1")
    engine = db.make_engine(db_url)
    try:
        run_all(worker_for(config, engine))
    finally:
        engine.dispose()
    with factory() as session:
        from kundo_gdpr.models import Request

        request = session.scalars(select(Request)).one()
        assert request.state == "done" and request.result
        assert request.result["erase"][ALICE]["mail"]["anonymised"] == 1
