"""Legal holds: what an organization must keep survives an erase, is exported, and is told."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.actions import holds
from kundo_gdpr.cli import main
from kundo_gdpr.config import Config
from kundo_gdpr.models import Channel, Event, MailConversation, MailMessage, Organization
from kundo_gdpr.records.hashing import key_ring
from tests.conftest import make_config
from tests.helpers import SV_ASSERTION, delivered, drop, outbox_messages, request_mail
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for
from tests.test_web import MakeClient, _client, _csrf, _sign_in, _token, agents  # noqa: F401

ALICE = "alice@example.com"
UNTIL = dt.datetime(2099, 12, 31, tzinfo=dt.UTC)
EXPORT_ALICE = (
    "Hej!\n\nVår kund alice@example.com vill ha ut allt i forum, e-post och chatt.\n\n"
    f"{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
)


@pytest.fixture
def auto_config(tmp_path: Path, db_url: str) -> Config:
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False})


def mail_channel(session: Session) -> Channel:
    return session.scalars(select(Channel).join(Organization).where(
        Organization.slug == "cykelbolaget", Channel.kind == "mail")).one()


def alices_mail(session: Session, channel_id: int) -> int:
    return session.scalar(select(func.count()).select_from(MailMessage).join(
        MailConversation).where(MailConversation.channel_id == channel_id,
                                MailConversation.customer_email == ALICE)) or 0


def test_held_mail_survives_the_erase_and_is_exported_and_told(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        channel = mail_channel(session)
        held_before = alices_mail(session, channel.id)
        assert held_before > 0
        holds.add(session, "cykelbolaget", " Alice@Example.com ", "Bokföringslagen 7 kap. 2 §",
                  UNTIL, "adam@kundo.se", ring=key_ring(auto_config), channel=str(channel.id))
        channel_id, channel_name = channel.id, channel.name
    inbox = auto_config.path("var/inbox")
    drop(inbox, request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        assert alices_mail(session, channel_id) == held_before
        actions = [e.action for e in session.scalars(select(Event).order_by(Event.id))]
        assert actions[0] == "hold_added"
    (done,) = [m for m in outbox_messages(auto_config.path("var/outbox"))
               if m["Subject"].endswith("Er begäran är utförd")]
    text = done.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f'E-post "{channel_name}": 1 ärende, {held_before} meddelanden' in text
    assert "Skäl: Bokföringslagen 7 kap. 2 §. Sparas till 2099-12-31." in text
    assert "Sparat för alice@example.com på grund av en bevarandeskyldighet" in text
    assert "Forum:" in text  # the rest was erased as usual

    drop(inbox, request_mail("Eva Ek <eva@cykelbolaget.se>", EXPORT_ALICE,
                             subject="Registerutdrag"), "export")
    run_all(worker_for(auto_config, engine))
    (export,) = [m for m in outbox_messages(auto_config.path("var/outbox"))
                 if m["Subject"].endswith("Er begäran är utförd") and m is not done
                 and delivered(m)]
    (attachment,) = delivered(export)
    data = attachment.get_content()
    if attachment.get_filename().endswith(".zip"):
        archive = zipfile.ZipFile(io.BytesIO(data))
        (name,) = [n for n in archive.namelist() if n.endswith(".json")]
        data = archive.read(name)
    exported = json.loads(data)
    assert len(exported["sheets"]["mail"]) == exported["counts"]["mail"] == held_before
    assert exported["counts"]["forum"] == exported["counts"]["chat"] == 0  # erased


def test_an_ended_hold_no_longer_keeps_anything(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        ring = key_ring(auto_config)
        hold = holds.add(session, "cykelbolaget", ALICE, "Tvist", UNTIL, "adam@kundo.se",
                         ring=ring)
        holds.end(session, hold.id, "adam@kundo.se", ring=ring)
        channel_id = mail_channel(session).id
        assert holds.listed(session) == []
        assert [h["id"] for h in holds.listed(session, include_ended=True)] == [hold.id]
    drop(auto_config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        assert alices_mail(session, channel_id) == 0
        assert [e.action for e in session.scalars(select(Event).where(
            Event.action.like("hold_%")).order_by(Event.id))] == ["hold_added", "hold_ended"]


@pytest.mark.parametrize("args,code", [
    (("nosuch", ALICE, "x", UNTIL), "no_such_organization"),
    (("cykelbolaget", "not an address", "x", UNTIL), "invalid_subject"),
    (("cykelbolaget", ALICE, " ", UNTIL), "reason_required"),
    (("cykelbolaget", ALICE, "x", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)), "ends_in_the_past"),
])
def test_a_bad_hold_is_refused_with_its_reason(
    world: None, factory: sessionmaker[Session], config: Config,
    args: tuple[str, str, str, dt.datetime], code: str,
) -> None:
    with factory.begin() as session, pytest.raises(holds.HoldError) as refused:
        holds.add(session, *args, actor="adam@kundo.se", ring=key_ring(config))
    assert refused.value.code == code


def test_holds_on_the_command_line_add_list_end_and_refuse_with_the_reason(
    world: None, auto_config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[database]\nurl = "{auto_config.database.url}"\n', encoding="utf-8")
    base = ["--config", str(config_file), "holds"]
    assert main([*base, "add", "--org", "cykelbolaget", "--subject", ALICE, "--reason",
                 "Bokföringslagen", "--until", "2099-12-31", "--by", "adam"]) == 0
    assert "hold #1 on alice@example.com until 2099-12-31" in capsys.readouterr().out
    assert main([*base, "list"]) == 0
    assert "every channel until 2099-12-31 (active) by adam: Bokföringslagen" in (
        capsys.readouterr().out)
    assert main([*base, "add", "--org", "cykelbolaget", "--subject", ALICE, "--channel",
                 "nosuch", "--reason", "x", "--until", "2099-12-31"]) == 1
    assert "the organization has no channel 'nosuch'" in capsys.readouterr().err
    assert main([*base, "end", "1", "--by", "adam"]) == 0
    assert main([*base, "end", "1"]) == 1
    assert "hold #1 has already ended" in capsys.readouterr().err
    assert main([*base, "list"]) == 0
    assert capsys.readouterr().out == ""


async def test_an_admin_places_and_ends_a_hold_on_the_web_and_an_agent_only_reads(
    aiohttp_client: MakeClient, world: None, config: Config, engine: Engine,
    agents: None, factory: sessionmaker[Session],  # noqa: F811
) -> None:
    with factory() as session:
        channel = mail_channel(session)
        channel_id, channel_name = channel.id, channel.name
    adam = await _client(aiohttp_client, config, engine)
    await _sign_in(adam, "adam@kundo.se")
    form = {"csrf": await _token(adam, "/holds"), "organization": "cykelbolaget",
            "subject": ALICE, "channel": str(channel_id), "reason": "Bokföringslagen",
            "until": "2099-12-31"}
    bad = await adam.post("/holds", data={**form, "until": "2000-01-01"}, allow_redirects=False)
    assert bad.headers["Location"] == "/holds?error=ends_in_the_past"
    page = await (await adam.get(bad.headers["Location"])).text()
    assert "The end date has already passed." in page
    added = await adam.post("/holds", data=form, allow_redirects=False)
    assert added.headers["Location"] == "/holds?done=added"
    html = await (await adam.get("/holds")).text()
    assert f"<td>{ALICE}</td><td>{channel_name}</td><td>Bokföringslagen</td>" in html
    anna = await _client(aiohttp_client, config, engine)
    await _sign_in(anna, "anna@kundo.se")
    html = await (await anna.get("/holds")).text()
    assert "Bokföringslagen" in html and "/end" not in html and 'action="/holds"' not in html
    assert (await anna.post("/holds/1/end", data={"csrf": _csrf(html)})).status == 403
    ended = await adam.post("/holds/1/end", data={"csrf": await _token(adam, "/holds")},
                            allow_redirects=False)
    assert ended.headers["Location"] == "/holds?done=ended"
    with factory() as session:
        assert holds.listed(session) == []
        assert [e.actor for e in session.scalars(select(Event).where(
            Event.action.like("hold_%")).order_by(Event.id))] == ["adam@kundo.se"] * 2


def _hold_events(engine: Engine) -> list[tuple[str, dict[str, object]]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, detail FROM events WHERE action LIKE 'hold_%' "
                                 "ORDER BY id")).all()
    return [(a, d if isinstance(d, dict) else json.loads(d)) for a, d in rows]


def test_hold_events_name_the_subject_by_keyed_hash_and_masked_form_only(
    world: None, config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    ring = key_ring(config)
    with factory.begin() as session:
        hold = holds.add(session, "cykelbolaget", " Alice@Example.com ", "Tvist", UNTIL,
                         "adam@kundo.se", ring=ring)
        holds.end(session, hold.id, "adam@kundo.se", ring=ring)
    events = _hold_events(engine)
    assert [a for a, _ in events] == ["hold_added", "hold_ended"]
    for _, detail in events:
        assert "alice" not in json.dumps(detail).lower()
        assert detail["subject_hash"] == ring.hash_subject(ALICE)
        assert detail["subject_masked"] == "a***@e******.com"
    with factory() as session:  # the hold itself keeps the address: matching needs it
        assert holds.listed(session, include_ended=True)[0]["subject"] == ALICE


def _old_hold_event(engine: Engine, subject: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO events (at, actor, action, detail) VALUES "
                          "(CURRENT_TIMESTAMP, 'adam', 'hold_added', :d)"),
                     {"d": json.dumps({"hold_id": 1, "organization": "cykelbolaget",
                                       "subject": subject, "channel_id": None,
                                       "reason": "Tvist", "ends_at": UNTIL.isoformat()})})


def test_migration_0012_hashes_old_hold_events_once_and_the_log_stays_append_only(
    db_url: str, tmp_path: Path,
) -> None:
    engine = db.make_engine(db_url)
    db.upgrade(engine, "0011")
    _old_hold_event(engine, ALICE)
    with pytest.raises(RuntimeError, match="needs the hash key"):
        db.upgrade(engine)  # without the config it cannot hash, and changes nothing
    assert _hold_events(engine)[0][1]["subject"] == ALICE
    config = make_config(tmp_path, db_url)
    db.upgrade(engine, config=config)
    ((_, detail),) = _hold_events(engine)
    assert detail == {"hold_id": 1, "organization": "cykelbolaget", "channel_id": None,
                      "reason": "Tvist", "ends_at": UNTIL.isoformat(),
                      "subject_hash": key_ring(config).hash_subject(ALICE),
                      "subject_masked": "a***@e******.com"}
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("UPDATE events SET actor = 'x'"))
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM events"))
    engine.dispose()
