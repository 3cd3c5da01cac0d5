"""Minimisation after retention: a closed request keeps its reference, dates, counts
and audit trail, and nothing that names the people in it; the mailbox's processed
copies go after `mailbox_days` (Maildir here, a real Dovecot below)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, LargeBinary, String, Text, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import JSON

from kundo_gdpr.cli import main
from kundo_gdpr.config import Config, ImapConfig
from kundo_gdpr.intake.imap import ImapSource
from kundo_gdpr.models import Base, InboundMail, OutboundMail, Request, utcnow
from kundo_gdpr.stages import sweep
from tests import servers
from tests.conftest import make_config
from tests.helpers import drop, request_mail
from tests.servers import Dovecot
from tests.test_pipeline import ERASE_ALICE, EXPORT_BERTIL, run_all, worker_for
from tests.test_web import MakeClient, _client, _sign_in, agents  # noqa: F401

dovecot = servers.dovecot

EXPORT_KUND1 = EXPORT_BERTIL.replace("bertil@example.org", "kund1@example.net").replace(
    "Please export everything", "We need a copy of all that")
# What must not be anywhere once the two old requests are minimised: the
# subjects' addresses and names, their mails' own words, and the subject lines.
GONE = ("alice@example.com", "bertil@example.org", "Alice Andersson", "Bertil Berg",
        "bli bortglömd", "Please export everything", "Radera Alice", "Export for Bertil")
OLD = dt.timedelta(days=800)


@pytest.fixture
def auto_config(tmp_path: Path, db_url: str) -> Config:
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False})


def queue_tables() -> list[Any]:
    """Every table but the desk's own (kundo_gdpr.models.desk)."""
    desk = {m.class_.__table__.name for m in Base.registry.mappers
            if m.class_.__module__ == "kundo_gdpr.models.desk"}
    return [t for t in Base.metadata.sorted_tables if t.name not in desk]


def _text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def found_in_tables(engine: Engine, needles: tuple[str, ...]) -> list[str]:
    """`table.column: needle` for each text, blob or JSON value holding a needle."""
    hits = []
    with engine.connect() as conn:
        for table in queue_tables():
            columns = [c for c in table.columns
                       if isinstance(c.type, String | Text | LargeBinary | JSON)
                       or isinstance(getattr(c.type, "impl", None), String | Text | JSON)]
            for column in columns:
                for (value,) in conn.execute(select(column).where(column.is_not(None))):
                    haystack = _text(value).lower()
                    hits += [f"{table.name}.{column.name}: {n}" for n in needles
                             if n.lower() in haystack]
    return hits


def found_in_folder(folder: Path, needles: tuple[str, ...]) -> list[str]:
    return [f"{p.name}: {n}" for p in folder.rglob("*") if p.is_file()
            for n in needles if n.lower().encode() in p.read_bytes().lower()]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: [tuple(_text(v) if v is not None else None for v in row)
                         for row in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in queue_tables()}


def cli(config: Config, tmp_path: Path, *args: str) -> int:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{config.database.url}"\n', encoding="utf-8")
    return main(["--config", str(path), *args])


def age(engine: Engine, references: list[str], inbox: Path, names: list[str]) -> None:
    """The old requests closed 800 days ago; their mailbox copies arrived 40 days ago."""
    then = utcnow() - OLD
    with sessionmaker(engine).begin() as session:
        session.execute(update(Request).where(Request.reference.in_(references)).values(
            done_at=then, decided_at=then, updated_at=then))
    old = time.time() - 40 * 86400
    for path in (inbox / "cur").iterdir():
        if path.name.split(":")[0] in names:
            os.utime(path, (old, old))


@pytest.fixture
def handled(world: None, auto_config: Config, engine: Engine,
            factory: sessionmaker[Session]) -> dict[str, str]:
    """Two requests closed long ago (alice erased, bertil exported) and one just now
    (kund1 exported): their references by name."""
    inbox = auto_config.path("var/inbox")
    sender = "Eva Ek <eva@cykelbolaget.se>"
    drop(inbox, request_mail(sender, ERASE_ALICE, subject="Radera Alice Andersson"), "alice")
    drop(inbox, request_mail(sender, EXPORT_BERTIL, subject="Export for Bertil Berg"), "bertil")
    run_all(worker_for(auto_config, engine))
    drop(inbox, request_mail(sender, EXPORT_KUND1, subject="Export"), "kund1")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        refs = {s.email.split("@")[0]: r.reference for r in session.scalars(select(Request))
                for s in r.subjects}
        assert [r.state for r in session.scalars(select(Request))] == ["done"] * 3
    age(engine, [refs["alice"], refs["bertil"]], inbox, ["alice", "bertil"])
    return refs


def test_minimised_requests_keep_no_address_name_or_mail_text_and_young_ones_stay_whole(
    handled: dict[str, str], auto_config: Config, engine: Engine, tmp_path: Path,
    factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str],
) -> None:
    inbox = auto_config.path("var/inbox")
    assert found_in_tables(engine, GONE)  # the scan finds them while they are there
    before = snapshot(engine)
    files = sorted(p.name for p in (inbox / "cur").iterdir())

    assert cli(auto_config, tmp_path, "retention", "run", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"{handled['alice']} (done, closed " in out and "would be minimised" in out
    assert "2 requests closed more than 730 days ago would be minimised" in out
    assert "2 processed copies older than 30 days would be deleted" in out
    assert handled["kund1"] not in out
    assert snapshot(engine) == before  # the dry run changed nothing
    assert sorted(p.name for p in (inbox / "cur").iterdir()) == files

    worker = worker_for(auto_config, engine)
    worker.run_once()  # the worker's sweep minimises and purges the mailbox
    assert found_in_tables(engine, GONE) == []
    assert found_in_folder(inbox, GONE) == []
    assert sorted(p.name.split(":")[0] for p in (inbox / "cur").iterdir()) == ["kund1"]
    assert not [p for p in auto_config.path("var/exports").rglob("*") if p.is_file()
                and handled["bertil"] in p.name]

    with factory() as session:
        young = session.scalars(select(Request).where(
            Request.reference == handled["kund1"])).one()
        assert young.minimised_at is None and [s.email for s in young.subjects] == [
            "kund1@example.net"]
        assert b"kund1@example.net" in young.inbound_mail.raw
        assert session.scalars(select(OutboundMail.raw).where(
            OutboundMail.request_id == young.id)).all()[0] != b""
        old = session.scalars(select(Request).where(
            Request.reference == handled["alice"])).one()
        mail = session.get(InboundMail, old.inbound_mail_id)
        assert mail is not None and mail.raw == b"" and len(mail.sha256) == 64 and mail.size
        assert [s.masked for s in old.subjects] == ["a***@e******.com"]
        assert old.result and sum(
            n for kind in old.result["erase"].values() for items in kind.values()
            for n in items.values()) > 0
        replies = session.scalars(select(OutboundMail).where(
            OutboundMail.request_id == old.id)).all()
        assert replies and all(r.raw == b"" and r.sha256 and r.purpose and r.message_id
                               for r in replies)
    minimised = snapshot(engine)

    assert cli(auto_config, tmp_path, "retention", "run") == 0  # idempotent
    assert "Retention: 0 requests closed more than 730 days ago minimised." in (
        capsys.readouterr().out)
    assert snapshot(engine) == minimised


def test_requests_show_tells_the_reference_dates_counts_and_trail_of_a_minimised_request(
    handled: dict[str, str], auto_config: Config, engine: Engine, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sweep.minimise_due(sessionmaker(engine), auto_config)
    assert cli(auto_config, tmp_path, "requests", "show", handled["alice"]) == 0
    out = capsys.readouterr().out
    head = out.split("\nreplies:")[0].splitlines()
    lines = {line[:10].strip(): line[11:] for line in head}
    assert lines["reference"] == handled["alice"]
    assert lines["received"].startswith("20") and lines["due"].startswith("20")
    assert lines["subjects"] == "a***@e******.com"
    assert lines["minimised"].startswith(f"{utcnow():%Y-%m-%d}")
    assert "SHA-256" in lines["mail"]
    assert '"posts":' in lines["result"] and "subject#" in lines["result"]
    trail = [line.split()[3] for line in out.split("audit trail:")[1].splitlines()
             if line.strip()]
    assert trail[:3] == ["mail_stored", "parsed", "checked"]
    assert "done" in trail and trail[-1] == "minimised"
    assert not [n for n in GONE if n.lower() in out.lower()]


async def test_the_request_page_of_a_minimised_request_says_so_in_both_languages(
    aiohttp_client: MakeClient, handled: dict[str, str], auto_config: Config,
    engine: Engine, agents: None,  # noqa: F811
) -> None:
    sweep.minimise_due(sessionmaker(engine), auto_config)
    client = await _client(aiohttp_client, auto_config, engine)
    await _sign_in(client, "anna@kundo.se")
    reference = handled["bertil"]
    pages = {lang: await (await client.get(f"/requests/{reference}?lang={lang}")).text()
             for lang in ("sv", "en")}
    assert "Minimerad" in pages["sv"] and "Brevet sparas inte längre" in pages["sv"]
    assert "Minimised" in pages["en"] and "The mail is no longer kept" in pages["en"]
    for html in pages.values():
        assert reference in html and "b***@e******.org" in html
        assert f"{utcnow():%Y-%m-%d}" in html  # received today in the test's world
        assert 'id="result"' in html
        actions = [a.split('"', 1)[0] for a in html.split('data-action="')[1:]]
        assert actions[:3] == ["mail_stored", "parsed", "checked"]
        assert "done" in actions and actions[-1] == "minimised"
        assert not [n for n in GONE if n.lower() in html.lower()]


def test_a_request_with_a_reply_still_to_go_waits_and_one_not_closed_is_never_touched(
    handled: dict[str, str], auto_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        alice = session.scalars(select(Request).where(
            Request.reference == handled["alice"])).one()
        session.execute(update(OutboundMail).where(OutboundMail.request_id == alice.id)
                        .values(state="held"))
        session.execute(update(Request).where(Request.reference == handled["bertil"])
                        .values(state="failed"))
    assert sweep.minimise_due(factory, auto_config) == []
    with factory.begin() as session:
        session.execute(update(OutboundMail).where(OutboundMail.request_id == alice.id)
                        .values(state="sent"))
    assert [m.reference for m in sweep.minimise_due(factory, auto_config)] == [
        handled["alice"]]


def test_retention_days_are_checked_at_start_up(tmp_path: Path) -> None:
    from kundo_gdpr.config import ConfigError

    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    with pytest.raises(ConfigError, match=r"retention\.request_days"):
        make_config(tmp_path, url, retention={"request_days": 0})
    with pytest.raises(ConfigError, match=r"retention\.mailbox_days"):
        make_config(tmp_path, url, retention={"mailbox_days": -1})


def test_the_imap_processed_folder_loses_copies_older_than_mailbox_days(
    dovecot: Dovecot,
) -> None:
    config = ImapConfig(host=dovecot.host, port=dovecot.port, security="plain",
                        username=dovecot.user, folder="INBOX")
    with dovecot.client() as client:
        client.create_folder(config.processed_folder)
        for n, days in ((1, 40), (2, 31), (3, 2)):
            raw = request_mail("eva@cykelbolaget.se", f"mail {n}", subject=f"n{n}")
            client.append(config.processed_folder, raw,
                          msg_time=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
    dovecot.append(request_mail("eva@cykelbolaget.se", "still to fetch"), "INBOX")
    source = ImapSource(config, dovecot.password)
    before = utcnow() - dt.timedelta(days=30)
    try:
        assert source.purge_processed(before, dry_run=True) == 2
        assert len(dovecot.messages(config.processed_folder)) == 3
        assert source.purge_processed(before) == 2
        (left,) = dovecot.messages(config.processed_folder)
        assert b"mail 3" in left
        assert len(dovecot.messages("INBOX")) == 1  # the folder it reads is not touched
        assert b"still to fetch" in next(iter(source.pending())).raw
        assert source.purge_processed(before) == 0
    finally:
        source.close()


def test_the_maildir_keeps_new_mail_and_what_is_younger_than_mailbox_days(
    tmp_path: Path,
) -> None:
    from kundo_gdpr.intake.maildir import MaildirSource

    source = MaildirSource(tmp_path / "inbox")
    for name in ("old", "young", "waiting"):
        drop(tmp_path / "inbox", request_mail("eva@x.se", name), name)
    source.done("old")
    source.done("young")
    old = time.time() - 40 * 86400
    os.utime(next((tmp_path / "inbox" / "cur").glob("old*")), (old, old))
    os.utime(next((tmp_path / "inbox" / "new").glob("waiting*")), (old, old))
    before = utcnow() - dt.timedelta(days=30)
    assert source.purge_processed(before, dry_run=True) == 1
    assert source.purge_processed(before) == 1
    assert [p.name.split(":")[0] for p in (tmp_path / "inbox" / "cur").iterdir()] == ["young"]
    assert [m.key for m in source.pending()] == ["waiting"]


def test_old_checked_events_lose_the_mails_words_once(db_url: str) -> None:
    from kundo_gdpr import db

    engine = db.make_engine(db_url)
    db.upgrade(engine, "0013")
    finding = {"code": "kind_doubt", "severity": "review",
               "args": {"words": ["radera inte Alice"], "subject": "subject#1"}}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO events (at, actor, action, detail) VALUES "
                          "(CURRENT_TIMESTAMP, 'system', 'checked', :d)"),
                     {"d": json.dumps({"state": "needs_review", "findings": [finding]})})
    db.upgrade(engine)
    with engine.connect() as conn:
        (detail,) = conn.execute(text("SELECT detail FROM events")).scalars()
    detail = detail if isinstance(detail, dict) else json.loads(detail)
    assert detail == {"state": "needs_review", "findings": [
        {"code": "kind_doubt", "severity": "review", "args": {"subject": "subject#1"}}]}
    engine.dispose()
