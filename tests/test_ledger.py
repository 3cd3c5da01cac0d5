"""The erasure ledger: an erasure survives a database backup restore."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.cli import main
from kundo_gdpr.config import Config
from kundo_gdpr.desk import Counts
from kundo_gdpr.models import Event, ForumPost, MailConversation, Request
from kundo_gdpr.records import ledger
from kundo_gdpr.stages import undo
from tests.backups import Backup
from tests.conftest import make_config
from tests.helpers import drop, request_mail
from tests.test_erase import ALICE, channel_of, covered, snapshot, traces
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for

KEY_A, KEY_B = "first key " * 4, "second key " * 4


@pytest.fixture
def records_config(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("TEST_HASH_KEY", KEY_A)
    monkeypatch.setenv("TEST_OLD_HASH_KEYS", "")
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False},
                       records={"hash_key_env": "TEST_HASH_KEY",
                                "old_hash_keys_env": "TEST_OLD_HASH_KEYS"})


def erase_alice(config: Config, engine: Engine) -> str:
    drop(config.path(config.intake.maildir.path),
         request_mail("eva@cykelbolaget.se", ERASE_ALICE), "erase-alice")
    run_all(worker_for(config, engine))
    with Session(engine) as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "done", request.findings
        assert request.reference
        return request.reference


def nonzero(counts: Counts) -> Counts:
    return {k: {i: n for i, n in v.items() if n} for k, v in counts.items()
            if any(v.values())}


def channel_ids(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return [c.id for c in covered(session)]


def test_replay_after_a_restore_erases_the_subject_again_and_nothing_else(
    world: None, records_config: Config, engine: Engine, factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    backup = Backup(engine, tmp_path)
    backup.take()  # older than the ledger: taken before the request arrived
    reference = erase_alice(records_config, engine)
    ids = channel_ids(factory)
    with factory() as session:
        erased = snapshot(session)
        done = session.scalars(select(Request)).one().result or {}
    line = ledger.path(records_config).read_text()
    assert ALICE not in line and "alice" not in line.lower()

    backup.restore()
    with factory() as session:
        assert session.scalar(select(Request.id)) is None
        assert snapshot(session) != erased and traces(session, ids)

    report = ledger.replay(factory, records_config)

    assert report.entries == 1 and report.skipped == []
    assert report.erased == {reference: nonzero(done["erase"][ALICE])}
    with factory() as session:
        assert traces(session, ids) == []
        assert snapshot(session) == erased  # every other row as the erase left it
        (event,) = session.scalars(select(Event).where(Event.action == "ledger_replayed"))
        assert event.detail["erased"] == {reference: report.erased[reference]}
        assert ALICE not in json.dumps(event.detail)
    again = ledger.replay(factory, records_config)
    assert again.erased == {reference: {}}  # nothing left to find


def test_replay_finds_untidy_reimported_addresses_and_old_keys_after_rotation(
    world: None, records_config: Config, engine: Engine, factory: sessionmaker[Session],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    backup = Backup(engine, tmp_path)
    backup.take()
    reference = erase_alice(records_config, engine)
    ids = channel_ids(factory)
    with factory() as session:
        erased = snapshot(session)
        mail_channel = channel_of(session, "mail")
    backup.restore()
    with factory.begin() as session:  # a re-import by raw SQL: untidy, and without keys
        session.execute(update(ForumPost).where(
            ForumPost.author_email == ALICE, ForumPost.channel_id.in_(ids)).values(
            author_email=" <ALICE@Example.COM> ", author_key=None))
        session.execute(text("UPDATE mail_conversations SET customer_email = :v, "
                             "customer_key = NULL WHERE customer_email = :a AND channel_id = :c"),
                        {"v": "Alice <alice@EXAMPLE.com>", "a": ALICE, "c": mail_channel})
    monkeypatch.setenv("TEST_HASH_KEY", KEY_B)  # rotated after the erasure

    unchecked = ledger.replay(factory, records_config)
    assert unchecked.erased == {}
    (skipped,) = unchecked.skipped
    assert (skipped.code, skipped.count, skipped.detail[1:]) == ("key_missing", 1, [reference])

    monkeypatch.setenv("TEST_OLD_HASH_KEYS", f"other, {KEY_A}")
    report = ledger.replay(factory, records_config)
    assert report.skipped == [] and report.erased[reference]
    with factory() as session:
        assert traces(session, ids) == []
        assert session.scalar(select(MailConversation.id).where(
            MailConversation.customer_key == ALICE, MailConversation.channel_id.in_(ids))) is None
        after = snapshot(session)
    # The untidy rows are gone, as the tidy ones were; the rest is as the erase left it.
    assert after == erased


def test_replay_says_what_it_could_not_check(
    world: None, records_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    reference = erase_alice(records_config, engine)
    path = ledger.path(records_config)
    path.write_text("{not json\n")  # the ledger lost its line; a broken one took its place
    report = ledger.replay(factory, records_config)
    assert [(s.code, s.count, s.detail) for s in report.skipped] == [
        ("bad_line", 1, ["1"]), ("not_in_ledger", 1, [reference])]
    later = ledger.replay(factory, records_config, since=dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
    assert [s.code for s in later.skipped] == ["bad_line"]


def test_the_replay_command_reports_counts_per_reference_and_what_it_could_not_check(
    world: None, records_config: Config, engine: Engine, factory: sessionmaker[Session],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    backup = Backup(engine, tmp_path)
    backup.take()
    reference = erase_alice(records_config, engine)
    backup.restore()
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[database]\nurl = "{records_config.database.url}"\n'
        '[records]\nhash_key_env = "TEST_HASH_KEY"\nold_hash_keys_env = "TEST_OLD_HASH_KEYS"\n')
    replay = ["--config", str(config_file), "ledger", "replay"]
    capsys.readouterr()
    assert main([*replay, "--since", "2000-01-01"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Ledger: 1 entry, oldest ")
    assert out[1] == (f"{reference}: erased again: mail 1 attachment, 2 messages, 1 conversation;"
                      " forum 1 redacted, 3 posts; chat 2 messages, 1 session.")
    assert main(replay) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "1 erasure checked, nothing of it was back."]
    monkeypatch.setenv("TEST_HASH_KEY", KEY_B)
    assert main(replay) == 1
    (said,) = capsys.readouterr().out.splitlines()[1:]
    assert said.startswith("Not checked: 1 erasure was hashed with key k") and said.endswith(
        f"records.old_hash_keys_env): {reference}.")
    assert main([*replay, "--since", "yesterday"]) == 2


def test_an_undone_erasure_is_not_erased_again_by_a_replay(
    world: None, records_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    erase_alice(records_config, engine)
    with factory.begin() as session:
        undo.undo(session, records_config, session.scalars(select(Request)).one(), "admin",
                  "fel person")
    with factory() as session:
        before = snapshot(session)
    report = ledger.replay(factory, records_config)
    assert (report.entries, report.erased, report.skipped) == (0, {}, [])
    ids = channel_ids(factory)
    with factory() as session:
        assert snapshot(session) == before and traces(session, ids)


def test_a_desk_without_planner_statistics_is_analysed_once(engine: Engine) -> None:
    """A restored PostgreSQL database has no statistics until autovacuum comes by;
    the replay that follows a restore analyses the desk's tables first, and only
    those that have none (SQLite's planner needs none)."""
    from kundo_gdpr import db
    from kundo_gdpr.desk.sql_erase import ERASED_TABLES

    first = db.analyse_unanalysed(engine, ERASED_TABLES)
    again = db.analyse_unanalysed(engine, ERASED_TABLES)
    if engine.dialect.name == "postgresql":
        assert sorted(first) == sorted(ERASED_TABLES)
        with engine.connect() as conn:
            unanalysed = conn.execute(text(
                "SELECT count(*) FROM pg_stat_user_tables WHERE relid = ANY(:ids) "
                "AND last_analyze IS NULL AND last_autoanalyze IS NULL"),
                {"ids": [conn.execute(text("SELECT to_regclass(:t)::oid"), {"t": t}).scalar()
                         for t in ERASED_TABLES]}).scalar()
        assert unanalysed == 0
    else:
        assert first == []
    assert again == []
