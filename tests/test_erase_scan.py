"""The auditor's scan: after an erase no text or blob column of any table holds
the subject's address in any written form, except the records the product must
keep; every other person's row is byte-identical but for the listed marker
substitutions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import identity
from kundo_gdpr.actions.erase import erase_subject
from kundo_gdpr.desk.forms import address_pattern
from kundo_gdpr.desk.protocol import DEFAULT
from kundo_gdpr.models import InboundMail, MailConversation, MailMessage, Request
from tests import untidy_desk
from tests.test_erase import TABLES, channel_of, covered, snapshot
from tests.untidy_desk import ANONYMISED, ERASED

SUBJECT = "Anna Svensson <ANNA@x.se>"
MARKER = "[borttagen e-postadress]"
# The request records the product keeps (README, "Physical erasure"): the
# erase's own progress row names the subject it erased.
KEPT = {("erase_progress", "subject")}


def _scan(session: Session) -> set[tuple[str, str, Any]]:
    """(table, column, id or row) of every value holding the address in any form."""
    pattern = address_pattern(untidy_desk.ANNA)
    found = set()
    inspector = inspect(session.connection())
    for table in inspector.get_table_names():
        columns = [c["name"] for c in inspector.get_columns(table)]
        for row in session.execute(text(f'SELECT * FROM "{table}"')).mappings():
            for column in columns:
                value = row[column]
                if isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("utf-8", "replace")
                elif not isinstance(value, str):
                    value = str(value) if value is not None else ""
                if pattern.search(value):
                    found.add((table, column, row.get("id")))
    return found


def test_no_column_of_any_table_holds_her_and_everyone_else_is_untouched_but_listed(
    world: None, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as session:
        desk = untidy_desk.build(session)
        mail = InboundMail(source="test", sha256="2" * 64, raw=b"", size=0, state="parsed")
        request = Request(reference="GDPR-S", inbound_mail=mail, kinds=["erase"],
                          state="approved", due_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
        session.add(request)
        session.flush()
        request_id, channels = request.id, covered(session)
    with factory() as session:
        before = snapshot(session)
        assert {t for t, _, _ in _scan(session)} >= {"mail_messages", "forum_posts"}
    erased = erase_subject(factory, "sql", DEFAULT, request_id, SUBJECT, channels)
    listed = {(m["item"], m["id"], m["found"]) for m in erased.mentions}
    with factory() as session:
        after = snapshot(session)
        left = {(t, c) for t, c, _ in _scan(session)}
    # Her address is left only where the product must keep it, and in someone
    # else's file that is listed for review (never rewritten).
    assert left - KEPT == {("attachments", "data")}
    assert ("attachments", desk.ids["a2"], "attachment") in listed

    gone = {(TABLES_BY_PREFIX[n[0]], desk.ids[n]) for n in ERASED}
    assert before.keys() - after.keys() == gone
    changed = {k for k in after if after[k] != before[k]}
    anonymised = {(TABLES_BY_PREFIX[n[0]], desk.ids[n]) for n in ANONYMISED}
    substituted = {(t, i) for t, i, found in listed if found == "address"}
    assert changed == anonymised | substituted
    pattern = address_pattern(untidy_desk.ANNA)
    for table, row_id in substituted:
        names = COLUMNS[table]
        old = dict(zip(names, before[(table, row_id)], strict=True))
        new = dict(zip(names, after[(table, row_id)], strict=True))
        for column in (c for c in names if old[c] != new[c]):
            if column in KEY_OF:  # a key column follows its replaced address
                assert new[column] == identity.key(new[KEY_OF[column]]), (table, column)
            else:
                assert new[column] == pattern.sub(MARKER, old[column]), (table, column)


TABLES_BY_PREFIX = {"c": "mail_conversations", "m": "mail_messages", "a": "attachments",
                    "p": "forum_posts", "s": "chat_sessions", "x": "chat_messages"}
COLUMNS = {m.__tablename__: [c.name for c in m.__table__.columns] for m in TABLES}
KEY_OF = {"from_key": "from_addr", "to_key": "to_addr"}


def test_her_address_in_others_address_columns_is_found_in_every_form(
    world: None, factory: sessionmaker[Session]
) -> None:
    """Others' messages whose address columns hold her address: plain (found by
    its key on PostgreSQL, whose trigram index leaves plain keys out), as a
    display name of someone else's address, among several recipients, in
    capitals, with an encoded `@`. Each is rewritten; a longer lookalike is not."""
    forms = {
        "plain": ("in", untidy_desk.BO, "anna@x.se"),
        "display": ("in", '"anna@x.se" <bo@y.se>', "support@shop.example"),
        "several": ("out", "support@shop.example", "bo@y.se, Anna <anna@x.se>"),
        "capitals": ("in", untidy_desk.BO, "ANNA@X.SE"),
        "encoded": ("in", "anna%40x.se", "support@shop.example"),
        "lookalike": ("in", untidy_desk.BO, "anna@x.se.example"),
    }
    with factory.begin() as session:
        untidy_desk.build(session)
        theirs = MailConversation(channel_id=channel_of(session, "mail"),
                                  customer_email=untidy_desk.BO, subject="Bo's")
        session.add(theirs)
        session.flush()
        rows = {name: MailMessage(conversation_id=theirs.id, direction=direction,
                                  from_addr=sender, to_addr=recipient, body="Hej")
                for name, (direction, sender, recipient) in forms.items()}
        session.add_all(rows.values())
        mail = InboundMail(source="test", sha256="3" * 64, raw=b"", size=0, state="parsed")
        request = Request(reference="GDPR-A", inbound_mail=mail, kinds=["erase"],
                          state="approved", due_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
        session.add(request)
        session.flush()
        ids = {name: row.id for name, row in rows.items()}
        request_id, channels = request.id, covered(session)
    erased = erase_subject(factory, "sql", DEFAULT, request_id, SUBJECT, channels)
    rewritten = {m["id"] for m in erased.mentions
                 if m["item"] == "mail_messages" and m["found"] == "address"}
    assert rewritten >= {ids[n] for n in forms if n != "lookalike"}
    assert ids["lookalike"] not in rewritten
    with factory() as session:
        left = {(t, i) for t, c, i in _scan(session) if t == "mail_messages"}
        kept = {i for (i,) in session.execute(text(
            "SELECT id FROM mail_messages WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)), {"ids": list(ids.values())})}
    assert left == set()
    assert kept == set(ids.values())  # others' messages: rewritten, never deleted
