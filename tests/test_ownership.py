"""Ownership per item and per message: erase and export take exactly the
subject's own, in whoever's conversation, and leave everyone else's."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.desk import Counts, open_desk
from kundo_gdpr.desk.protocol import DEFAULT
from kundo_gdpr.desk.sql import add, zero_counts
from kundo_gdpr.models import (
    Attachment,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
)
from tests import untidy_desk
from tests.test_erase import covered
from tests.untidy_desk import ANONYMISED, ERASED, Desk

SUBJECT = "Anna Svensson <ANNA@x.se>"
TABLES = {"c": MailConversation, "m": MailMessage, "a": Attachment, "p": ForumPost,
          "s": ChatSession, "x": ChatMessage}


@pytest.fixture
def desk(world: None, factory: sessionmaker[Session]) -> Desk:
    with factory.begin() as session:
        return untidy_desk.build(session)


def _present(session: Session, desk: Desk) -> set[str]:
    found = set()
    for name, row_id in desk.ids.items():
        if session.get(TABLES[name[0]], row_id, populate_existing=True) is not None:
            found.add(name)
    return found


def _erase(factory: sessionmaker[Session]) -> Counts:
    with factory.begin() as session:
        channels = covered(session)
        counts = zero_counts(channels, DEFAULT)
        for step in open_desk("sql", session).erase(SUBJECT, channels):
            add(counts, step.counts)
        return counts


def test_erase_takes_her_messages_everywhere_and_keeps_everyone_elses(
    desk: Desk, factory: sessionmaker[Session]
) -> None:
    _erase(factory)
    with factory() as session:
        assert _present(session, desk) == set(desk.ids) - set(ERASED)
        c1 = session.get(MailConversation, desk.ids["c1"])
        s3 = session.get(ChatSession, desk.ids["s3"])
        assert c1 and (c1.customer_name, c1.customer_email, c1.customer_key) == (None, None, None)
        assert {n for n in ANONYMISED if n[0] in "cs"} == {"c1", "s3"}
        assert s3 and (s3.visitor_name, s3.visitor_email, s3.visitor_ip) == (None, None, None)
        m3 = session.get(MailMessage, desk.ids["m3"])
        assert m3 and untidy_desk.BOS_ID_NUMBER in m3.body and m3.from_addr == untidy_desk.BO
        p1 = session.get(ForumPost, desk.ids["p1"])
        assert p1 and p1.title == p1.body == "[Inlägget har tagits bort på begäran.]"
        assert (p1.author_name, p1.author_email, p1.author_ip) == (None, None, None)
        plus = session.get(ForumPost, desk.ids["p5"])
        assert plus and plus.author_email == "anna+shop@x.se"  # listed, not erased


def test_preview_counts_are_the_erase_counts(desk: Desk, factory: sessionmaker[Session]) -> None:
    with factory() as session:
        preview = open_desk("sql", session).count(SUBJECT, covered(session))
    erased = _erase(factory)
    assert erased == preview
    assert {k: v for k, v in erased["mail"].items() if "mentions" not in k} == {
        "conversations": 1, "messages": 6, "attachments": 1, "anonymised": 1}
    assert {k: v for k, v in erased["chat"].items() if "mentions" not in k} == {
        "sessions": 1, "messages": 4, "attachments": 1, "anonymised": 1}
    assert (erased["forum"]["posts"], erased["forum"]["redacted"],
            erased["forum"]["attachments"]) == (0, 1, 1)


MAIL_SQL = """
SELECT m.body FROM mail_messages m JOIN mail_conversations c ON c.id = m.conversation_id
WHERE c.channel_id IN ({ids}) AND (
  (m.direction = 'in' AND (m.from_key = :k
                           OR (COALESCE(m.from_key, '') = '' AND c.customer_key = :k)))
  OR (m.direction = 'out' AND (m.to_key = :k
                               OR (COALESCE(m.to_key, '') = '' AND c.customer_key = :k))))
"""
CHAT_SQL = """
SELECT m.body FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
WHERE s.channel_id IN ({ids}) AND (
  (m.sender = 'visitor' AND (m.sender_key = :k
                             OR (COALESCE(m.sender_key, '') = '' AND s.visitor_key = :k)))
  OR (m.sender = 'agent' AND s.visitor_key = :k AND NOT EXISTS (
        SELECT 1 FROM chat_messages o WHERE o.session_id = s.id AND o.sender = 'visitor'
        AND COALESCE(o.sender_key, '') NOT IN ('', :k))))
"""


def test_the_export_is_hers_alone_and_whole(desk: Desk, factory: sessionmaker[Session]) -> None:
    with factory() as session:
        channels = covered(session)
        ids = ", ".join(str(c.id) for c in channels)
        store = open_desk("sql", session)
        sheets = {s.kind: [dict(zip(s.columns, r, strict=True)) for r in s.rows]
                  for s in store.export(SUBJECT, channels)}
        files = {a[1] for a in store.attachments(SUBJECT, channels)}
        expected = {kind: sorted(session.scalars(text(sql.format(ids=ids)),
                                                 {"k": untidy_desk.ANNA}))
                    for kind, sql in (("mail", MAIL_SQL), ("chat", CHAT_SQL))}
        forum = sorted(session.scalars(select(ForumPost.body).where(
            ForumPost.author_key == untidy_desk.ANNA)))
    assert sorted(r["body"] for r in sheets["mail"]) == expected["mail"]
    assert sorted(r["body"] for r in sheets["chat"]) == expected["chat"]
    assert sorted(r["body"] for r in sheets["forum"]) == forum
    bodies = _bodies(factory, desk)
    assert sorted(r["body"] for r in sheets["mail"]) == sorted(
        bodies[n] for n in ("m1", "m2", "m6", "m7", "m9", "m10"))
    assert sorted(r["body"] for r in sheets["chat"]) == sorted(
        bodies[n] for n in ("x1", "x2", "x4", "x6"))
    everything = repr(sheets)
    assert untidy_desk.BOS_ID_NUMBER not in everything and "Bos fråga" not in everything
    assert "198.18.7.7" not in everything  # Bo's IP, on the chat she wrote into
    assert files == desk.of("a1", "a3", "a4")


def _bodies(factory: sessionmaker[Session], desk: Desk) -> dict[str, str]:
    with factory() as session:
        return {n: row.body for n, i in desk.ids.items() if n[0] in "mx"
                and (row := session.get(TABLES[n[0]], i)) is not None}


def test_her_address_in_any_written_form_is_replaced_and_what_is_not_hers_is_listed(
    desk: Desk, factory: sessionmaker[Session]
) -> None:
    with factory() as session:
        store = open_desk("sql", session)
        listed_before = {(m.item, m.id, m.found) for m in store.mentions(SUBJECT, covered(session))}
    with factory.begin() as session:
        steps = list(open_desk("sql", session).erase(SUBJECT, covered(session)))
    listed = {(m.item, m.id, m.found) for s in steps for m in s.mentions}
    assert listed == listed_before
    ids = desk.ids
    assert {(t, i) for t, i, found in listed if found == "address"} == {
        ("mail_messages", ids["m3"]), ("mail_messages", ids["m8"]),
        ("forum_posts", ids["p3"]), ("forum_posts", ids["p4"])}
    assert ("forum_posts", ids["p5"], "tag") in listed
    assert ("attachments", ids["a2"], "attachment") in listed
    assert ("forum_posts", ids["p4"], "name") in listed
    with factory() as session:
        texts = {n: session.get(TABLES[n[0]], ids[n]) for n in ("m3", "m8", "p3", "p4")}
        for name, row in texts.items():
            assert row is not None
            assert "x.se" not in row.body, name
        p3 = texts["p3"]
        assert isinstance(p3, ForumPost)
        marker = "[borttagen e-postadress]"
        assert p3.body == f"Kontakta {marker} eller {marker} i mejlen."
        a2 = session.get(Attachment, ids["a2"])
        assert a2 and b"ANNA@x.se" in a2.data  # someone else's file: listed, not rewritten
