"""Audit events never hold a subject in clear: new ones name the request_subjects
row, and migration 0011 rewrote the old ones once, the trigger staying on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config
from kundo_gdpr.models import Event, Request
from kundo_gdpr.records.redact import redact
from tests.test_ledger import erase_alice, records_config

__all__ = ["records_config"]  # the fixture, used by name
ALICE = "alice@example.com"


def test_no_event_of_an_erasure_holds_the_subject_in_clear(
    world: None, records_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    erase_alice(records_config, engine)
    with factory() as session:
        request = session.scalars(select(Request)).one()
        (subject,) = request.subjects
        details = {e.action: json.dumps(e.detail) for e in session.scalars(select(Event))}
    assert {"parsed", "checked", "done"} <= details.keys()
    for action, detail in details.items():
        assert "alice" not in detail.lower(), action
    assert f'"subject#{subject.id}"' in details["parsed"]
    assert f'"subject#{subject.id}": {{"mail"' in details["done"]  # result["erase"][subject]


def test_words_quoting_the_address_and_a_subject_corrected_away_are_redacted() -> None:
    tokens = {ALICE: "subject#7"}
    detail = {"subjects": [" <Alice@Example.com>", "old@example.org"], "sender": "eva@x.se",
              "findings": [{"args": {"words": ["radera Alice@example.COM nu"]}}],
              "result": {"erase": {ALICE: {"forum": {"posts": 1}}}}}
    assert redact(detail, tokens) == {
        "subjects": ["subject#7", "subject#removed"], "sender": "eva@x.se",
        "findings": [{"args": {"words": ["radera subject#7 nu"]}}],
        "result": {"erase": {"subject#7": {"forum": {"posts": 1}}}}}


def test_migration_0011_rewrites_old_events_once_and_the_log_stays_append_only(
    db_url: str, tmp_path: Path,
) -> None:
    engine = db.make_engine(db_url)
    db.upgrade(engine, "0010")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO inbound_mail (id, source, sha256, raw, size, state, received_at) "
            "VALUES (1, 'maildir', 'ab', :raw, 3, 'parsed', CURRENT_TIMESTAMP)"), {"raw": b"raw"})
        conn.execute(text(
            "INSERT INTO requests (id, inbound_mail_id, subject_line, kinds, channel_kinds, "
            "language, assertion, authenticated, state, problems, findings, received_at, "
            "due_at, updated_at) VALUES (1, 1, '', '[]', '[]', 'sv', true, false, 'done', "
            "'[]', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO request_subjects (id, request_id, email) "
                          "VALUES (5, 1, 'alice@example.com')"))
        for action, detail in (("parsed", {"subjects": ["Alice@example.com"]}),
                               ("mail_stored", {"size": 3}),
                               ("done", {"result": {"erase": {ALICE: {"chat": {"sessions": 1}}}}})):
            conn.execute(text("INSERT INTO events (request_id, at, actor, action, detail) "
                              "VALUES (1, CURRENT_TIMESTAMP, 'system', :a, :d)"),
                         {"a": action, "d": json.dumps(detail)})
    db.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, detail FROM events ORDER BY id")).all()
    details = [(a, d if isinstance(d, dict) else json.loads(d)) for a, d in rows]
    assert details == [("parsed", {"subjects": ["subject#5"]}), ("mail_stored", {"size": 3}),
                       ("done", {"result": {"erase": {"subject#5": {"chat": {"sessions": 1}}}}})]
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("UPDATE events SET actor = 'x'"))
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM events"))
    engine.dispose()
