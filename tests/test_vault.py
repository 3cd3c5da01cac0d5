"""The vault's sealed images: every column type comes back exactly, however it
was captured (PostgreSQL's JSON images, or the driver's values in Python), a
row changed twice in one batch comes back as it was first, and a vault
sealed in an older format still undoes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import zlib
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.actions import vault
from kundo_gdpr.actions.erase import erase_subject
from kundo_gdpr.desk.protocol import DEFAULT
from kundo_gdpr.models import (
    Attachment,
    ChatMessage,
    ChatSession,
    ForumPost,
    InboundMail,
    MailConversation,
    MailMessage,
    Request,
    UndoWindow,
    VaultBatch,
    utcnow,
)
from tests.test_erase import channel_of, covered
from tests.test_undo import checksums

VERA = "vera@example.com"
# Texts JSON must escape, and that only an exact round trip keeps (no NUL: PostgreSQL
# has none in text).
TEXTS = ('"citat" och \\bakstreck\\', "rad\nny\r\n\ttab \x01\x1f\x7f", "åäö ß 😀 \u2028 \ud7ff",
         "", " ", "null", "[1,2]", "{\"t\": \"2026-01-01\"}")
BLOBS = (bytes(range(256)), b"", b"\x00", b"\\x00ff", "åäö".encode(), os.urandom(3000))
TIMES = (dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
         dt.datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC),
         dt.datetime(1999, 12, 31, 12, 0, 0, 120000, tzinfo=dt.UTC),
         dt.datetime(2026, 3, 29, 1, 30, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))


def _request(session: Session, reference: str) -> int:
    mail = InboundMail(source="test", sha256=reference.ljust(64, "0")[:64], raw=b"", size=0,
                       state="parsed")
    request = Request(reference=reference, inbound_mail=mail, kinds=["erase"], state="approved",
                      due_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    session.add(request)
    session.flush()
    return request.id


def _veras_desk(session: Session) -> None:
    """Vera's items with every odd value: texts, files, NULLs, microseconds. Some
    are kept and changed by the erase (an opener others answered, a conversation
    and a chat she shares), the rest deleted."""
    mail, forum, chat = (channel_of(session, k) for k in ("mail", "forum", "chat"))
    for n, (text, blob, when) in enumerate(zip(TEXTS, BLOBS * 2, TIMES * 2, strict=False)):
        opener = ForumPost(channel_id=forum, author_email=VERA, author_name=text or None,
                           author_ip=None if n % 2 else "2001:db8::1",
                           title=None if n % 3 else text, body=text, created_at=when)
        session.add(opener)
        session.flush()
        reply = ForumPost(channel_id=forum, topic_id=opener.id, parent_id=opener.id,
                          author_email=VERA if n % 2 else "kund@example.net", body=text[::-1],
                          created_at=when)
        conversation = MailConversation(channel_id=mail, customer_email=VERA,
                                        customer_name=None if n % 2 else text, subject=text,
                                        created_at=when)
        visit = ChatSession(channel_id=chat, visitor_email=VERA, visitor_name=text or None,
                            visitor_ip=None if n % 2 else "192.0.2.7", started_at=when)
        session.add_all([reply, conversation, visit])
        session.flush()
        messages = [
            MailMessage(conversation_id=conversation.id, direction="in", from_addr=VERA,
                        to_addr=None, body=text, created_at=when),
            MailMessage(conversation_id=conversation.id, direction="in",
                        from_addr="other@example.net", to_addr="support@x", body=text,
                        created_at=when),
            ChatMessage(session_id=visit.id, sender="visitor", body=text, sent_at=when),
        ]
        if n % 2:
            messages.append(ChatMessage(session_id=visit.id, sender="visitor",
                                        sender_email="annan@example.net", body="hej",
                                        sent_at=when))
        session.add_all(messages)
        session.flush()
        session.add_all([
            Attachment(forum_post_id=opener.id, filename=text or "x", data=blob, size=len(blob)),
            Attachment(mail_message_id=messages[0].id, filename="f", content_type=text,
                       data=blob, size=0),
            Attachment(chat_message_id=messages[2].id, filename="g", data=blob[::-1],
                       size=n),
        ])


def _blobs(session: Session, window: UndoWindow) -> list[dict[str, Any]]:
    """The batches' plain JSON (white box: which way the images were kept)."""
    assert window.key is not None
    found = []
    for batch in session.scalars(select(VaultBatch).where(VaultBatch.window_id == window.id)):
        aad = f"kundo-gdpr vault {window.request_id}:{batch.seq}".encode()
        found.append(json.loads(zlib.decompress(AESGCM(window.key).decrypt(
            batch.nonce, batch.sealed, aad))))
    return found


def test_every_column_type_comes_back_exactly_from_the_vault(
    world: None, engine: Engine, factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        _veras_desk(session)
        request_id, channels = _request(session, "GDPR-V1"), covered(session)
    before = checksums(engine)
    watched = vault.watched(factory, request_id, 72)
    erase_subject(watched, "sql", DEFAULT, request_id, VERA, channels, purge=False)
    erased = checksums(engine)
    assert {t for t in before if before[t] != erased[t]} == set(vault.DESK_TABLES)
    with factory.begin() as session:
        window = vault.window_of(session, request_id)
        assert window is not None
        blobs = _blobs(session, window)
        assert {b["v"] for b in blobs} == {3}
        codecs = [codec for b in blobs for _, _, codec, _ in b["t"]]
        # PostgreSQL's own JSON for its statements' images; the driver's values, tagged,
        # for SQLite's (and for the ORM paths).
        if engine.dialect.name == "postgresql":
            assert ["", "", "", "", "", "", "b", ""] in codecs
        else:
            assert set(map(str, codecs)) == {"None"}
        restored = vault.restore(session, window, utcnow())
        assert restored["attachments"] == 3 * len(TEXTS)
    assert checksums(engine) == before


def test_a_row_changed_twice_in_one_batch_comes_back_as_it_was_first(
    world: None, engine: Engine, factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        _veras_desk(session)
        request_id = _request(session, "GDPR-V2")
        posts = list(session.scalars(select(ForumPost.id).where(
            ForumPost.author_email == VERA, ForumPost.topic_id.is_(None))
            .order_by(ForumPost.id).limit(3)))
    before = checksums(engine)
    postgres = engine.dialect.name == "postgresql"
    with vault.watched(factory, request_id, 72).begin() as session:
        first, second, third = (ForumPost.id == p for p in posts)
        # Kept in SQL, drained before the second (ORM) statement; kept again there.
        session.execute(update(ForumPost).where(first).values(body="ändrad"))
        session.execute(delete(ForumPost).where(first))
        # Kept in Python (RETURNING), then in SQL.
        session.execute(update(ForumPost).where(second).values(title="ny")
                        .returning(ForumPost.id))
        session.execute(delete(ForumPost).where(second))
        if postgres:  # twice in SQL without a drain between (as the SQL eraser does)
            conn = session.connection()
            for change in (update(ForumPost).where(third).values(author_name="x"),
                           delete(ForumPost).where(third)):
                part = change.returning(ForumPost.id).cte("twice_gone")
                conn.execute(select(func.count()).select_from(part))
        else:
            session.execute(update(ForumPost).where(third).values(author_name="x"))
            session.execute(delete(ForumPost).where(third))
    with factory.begin() as session:
        window = vault.window_of(session, request_id)
        assert window is not None
        mine = vault.images(session, window)
        assert {k[1] for k, i in mine.items() if k[0] == "forum_posts" and i.op == "delete"} \
            >= set(posts)
        vault.restore(session, window, utcnow())
    assert checksums(engine) == before


def _tag(value: Any) -> Any:
    """A value as versions 1 and 2 wrote it."""
    if isinstance(value, bytes | memoryview):
        return {"b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    return value


@pytest.mark.parametrize("version", [1, 2])
def test_a_vault_sealed_in_an_older_format_still_undoes(
    version: int, world: None, engine: Engine, factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        _veras_desk(session)
        request_id = _request(session, f"GDPR-O{version}")
    before = checksums(engine)
    taken: list[tuple[str, str, list[str], tuple[Any, ...]]] = []
    with engine.begin() as conn:  # the erase, as an older version kept it
        # Rows nothing hangs off (files, replies): no cascade takes more than is kept.
        for name, which in (("attachments", "1 = 1"), ("forum_posts", "topic_id IS NOT NULL")):
            found = conn.exec_driver_sql(f"SELECT * FROM {name} WHERE {which} ORDER BY id")
            columns = list(found.keys())
            for row in found.all()[-5:]:
                taken.append((name, "delete", columns, tuple(row)))
                conn.exec_driver_sql(f"DELETE FROM {name} WHERE id = {row.id}")
        row = conn.exec_driver_sql("SELECT * FROM chat_sessions ORDER BY id").first()
        assert row is not None
        columns = list(conn.exec_driver_sql("SELECT * FROM chat_sessions").keys())
        taken.append(("chat_sessions", "update", columns, tuple(row)))
        conn.exec_driver_sql(f"UPDATE chat_sessions SET visitor_name = NULL WHERE id = {row.id}")
    if version == 1:
        data: Any = [[name, op, {c: _tag(v) for c, v in zip(columns, values, strict=True)}]
                     for name, op, columns, values in taken]
    else:
        tables: dict[str, Any] = {}
        for name, op, columns, values in taken:
            entry = tables.setdefault(name, [name, columns, [], []])
            entry[2].append([_tag(v) for v in values])
            if op == "delete":
                entry[3].append(values[0])
        data = {"v": 2, "t": list(tables.values())}
    key, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, zlib.compress(json.dumps(data).encode()),
                                 f"kundo-gdpr vault {request_id}:1".encode())
    with factory.begin() as session:
        now = utcnow()
        window = UndoWindow(request_id=request_id, key=key, opened_at=now,
                            closes_at=now + dt.timedelta(hours=1))
        session.add(window)
        session.flush()
        session.add(VaultBatch(window_id=window.id, seq=1, nonce=nonce, sealed=sealed))
        session.flush()
        assert vault.restore(session, window, now) == {
            "attachments": 5, "forum_posts": 5, "chat_sessions": 1}
    assert checksums(engine) == before


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no infinity
def test_an_infinite_timestamp_comes_back_from_the_vault(
    world: None, engine: Engine, factory: sessionmaker[Session],
) -> None:
    """PostgreSQL's `infinity` has no Python datetime; a row that holds one (a host
    desk's "no end" date, say) is still kept and put back as it was."""
    with factory.begin() as session:
        _veras_desk(session)
        session.execute(sa.text("UPDATE chat_sessions SET started_at = 'infinity' "
                             "WHERE visitor_email = :v"), {"v": VERA})
        session.execute(sa.text("UPDATE forum_posts SET created_at = '-infinity' "
                             "WHERE author_email = :v"), {"v": VERA})
        request_id, channels = _request(session, "GDPR-V9"), covered(session)
    before = _server_digests(engine)
    watched = vault.watched(factory, request_id, 72)
    erase_subject(watched, "sql", DEFAULT, request_id, VERA, channels, purge=False)
    assert _server_digests(engine) != before
    with factory.begin() as session:
        window = vault.window_of(session, request_id)
        assert window is not None
        vault.restore(session, window, utcnow())
    assert _server_digests(engine) == before


def _server_digests(engine: Engine) -> dict[str, str]:
    """Each desk table's rows digested by PostgreSQL itself (the driver cannot read
    an infinite timestamp into Python)."""
    with engine.connect() as conn:
        return {name: conn.scalar(sa.text(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {name} t"))
            for name in vault.DESK_TABLES}
