"""The safety window: an erase undone within it is as if it never ran; after it, nothing is left."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.actions.vault import DESK_TABLES
from kundo_gdpr.cli import main
from kundo_gdpr.config import Config
from kundo_gdpr.models import (
    Attachment,
    ChatMessage,
    ChatSession,
    Event,
    ForumPost,
    MailConversation,
    MailMessage,
    Request,
    UndoWindow,
    VaultBatch,
)
from kundo_gdpr.stages import undo
from tests.conftest import make_config
from tests.helpers import SV_ASSERTION, drop, outbox_messages, request_mail
from tests.test_erase import covered, mentions  # noqa: F401  (fixture: others' items naming Alice)
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for
from tests.test_web import MakeClient, _client, _csrf, _sign_in, _token, agents  # noqa: F401

ERASE_BERTIL = (
    "Hej!\n\nVår kund bertil@example.org vill bli bortglömd. Radera allt i forum, "
    f"e-post och chatt.\n\n{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
)
MARKER = "zqxj-only-alice-wrote-this"


@pytest.fixture
def auto_config(tmp_path: Path, db_url: str) -> Config:
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False})


def checksums(engine: Engine) -> dict[str, str]:
    """sha256 of every desk table's rows, as the driver returns the stored values."""
    sums = {}
    with engine.connect() as conn:
        for name in DESK_TABLES:
            rows = conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id").all()
            sums[name] = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
    return sums


def erase_by_mail(config: Config, engine: Engine, *bodies: str) -> None:
    for n, body in enumerate(bodies):
        drop(config.path("var/inbox"), request_mail("Eva Ek <eva@cykelbolaget.se>", body,
                                                    message_id=f"<erase-{n}@cykelbolaget.se>"),
             f"erase-{n}")
    run_all(worker_for(config, engine))


def the_request(session: Session, subject: str = "alice@example.com") -> Request:
    return next(r for r in session.scalars(select(Request)) if r.subjects[0].email == subject)


def test_an_undo_within_the_window_puts_back_every_row_byte_for_byte(
    mentions: dict[str, int], auto_config: Config, engine: Engine,  # noqa: F811
    factory: sessionmaker[Session],
) -> None:
    before = checksums(engine)
    erase_by_mail(auto_config, engine, ERASE_ALICE)
    erased = checksums(engine)
    assert {t for t in before if before[t] != erased[t]} == set(DESK_TABLES)
    with factory.begin() as session:
        request = the_request(session)
        window = session.scalars(select(UndoWindow)).one()
        assert window.key and len(window.key) == 32
        assert session.scalar(select(func.count()).select_from(VaultBatch)) >= 1
        restored = undo.undo(session, auto_config, request, "admin@kundo.example", "fel person")
        assert restored["forum_posts"] >= 4 and restored["attachments"] >= 2
    assert checksums(engine) == before
    with factory() as session:
        request = the_request(session)
        assert request.state == "undone"
        window = session.scalars(select(UndoWindow)).one()
        assert window.key is None and window.undone_at is not None
        assert session.scalar(select(func.count()).select_from(VaultBatch)) == 0
        (event,) = session.scalars(select(Event).where(Event.action == "undone"))
        assert event.actor == "admin@kundo.example" and event.detail["reason"] == "fel person"
        reference = request.reference
    run_all(worker_for(auto_config, engine))  # delivers the reply
    sent = {m["Subject"]: m for m in outbox_messages(auto_config.path("var/outbox"))}
    done = sent[f"[{reference}] Er begäran är utförd"]
    undone = sent[f"[{reference}] Raderingen har ångrats"]
    done_text = done.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "kan vi ångra den fram till" in done_text
    assert window.closes_at.strftime("%Y-%m-%d %H:%M") in done_text
    assert undone["To"] == "eva@cykelbolaget.se"
    assert "fel person" in undone.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    with factory.begin() as session:
        with pytest.raises(undo.UndoRefused) as again:
            undo.undo(session, auto_config, the_request(session), "admin", "igen")
        assert again.value.reason == "not_erased"


def test_after_the_window_the_key_and_vault_are_gone_and_no_byte_holds_her_data(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    db_url: str,
) -> None:
    with factory.begin() as session:  # her texts and files at Cykelbolaget (the erased ones)
        ids = [c.id for c in covered(session)]
        mine = (ForumPost.author_email == "alice@example.com") & ForumPost.channel_id.in_(ids)
        session.execute(update(ForumPost).where(mine).values(body=MARKER))
        session.execute(update(MailMessage).where(
            MailMessage.from_addr == "alice@example.com",
            MailMessage.conversation_id.in_(select(MailConversation.id).where(
                MailConversation.channel_id.in_(ids)))).values(body=MARKER))
        hers = select(ChatSession.id).where(ChatSession.visitor_email == "alice@example.com",
                                            ChatSession.channel_id.in_(ids))
        session.execute(update(ChatMessage).where(
            ChatMessage.sender == "visitor", ChatMessage.session_id.in_(hers)).values(body=MARKER))
        session.execute(update(Attachment).where(Attachment.forum_post_id.in_(
            select(ForumPost.id).where(mine))).values(data=MARKER.encode()))
        assert session.scalar(select(func.count()).select_from(ForumPost).where(
            ForumPost.body == MARKER)) > 0
    start = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        erase_by_mail(auto_config, engine, ERASE_ALICE)
    with time_machine.travel(start + dt.timedelta(hours=71, minutes=59), tick=False):
        assert undo.close_due(factory) == 0
    closes = start + dt.timedelta(hours=72)
    with time_machine.travel(closes + dt.timedelta(minutes=1), tick=False):
        assert undo.close_due(factory) == 1
    with factory() as session:
        window = session.scalars(select(UndoWindow)).one()
        assert window.key is None and window.closed_at == closes + dt.timedelta(minutes=1)
        assert session.scalar(select(func.count()).select_from(VaultBatch)) == 0
        assert session.scalar(select(func.count()).select_from(Event).where(
            Event.action == "undo_window_closed")) == 1
    with factory.begin() as session:
        with pytest.raises(undo.UndoRefused) as refused:
            undo.undo(session, auto_config, the_request(session), "admin", "för sent")
        assert refused.value.reason == "window_closed"
        assert "closed at 2026-11-26 09:00 UTC" in undo.explain(refused.value)
    if db_url.startswith("sqlite"):
        engine.dispose()
        path = Path(db_url.split("///", 1)[1])
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        data = b"".join(p.read_bytes() for p in files)
        assert data.count(MARKER.encode()) == 0


def test_an_undo_after_a_later_erase_of_the_same_rows_restores_nothing(
    mentions: dict[str, int], auto_config: Config, engine: Engine,  # noqa: F811
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        post = session.get(ForumPost, mentions["forum_posts"])
        assert post is not None
        post.body += " Fråga också bertil@example.org."
    erase_by_mail(auto_config, engine, ERASE_ALICE, ERASE_BERTIL)
    after = checksums(engine)
    with factory.begin() as session:
        with pytest.raises(undo.UndoRefused) as refused:
            undo.undo(session, auto_config, the_request(session), "admin", "fel")
        assert refused.value.reason == "overlap"
        assert f"forum_posts#{mentions['forum_posts']}" in refused.value.detail["rows"]
    assert checksums(engine) == after
    with factory.begin() as session:  # Bertil's, the later one, can be undone
        undo.undo(session, auto_config, the_request(session, "bertil@example.org"), "a", "fel")
    with factory.begin() as session:  # and then Alice's
        undo.undo(session, auto_config, the_request(session), "admin", "fel")
        assert the_request(session).state == "undone"


def test_with_no_window_an_erase_is_final_at_once(
    world: None, tmp_path: Path, db_url: str, engine: Engine, factory: sessionmaker[Session]
) -> None:
    config = make_config(tmp_path, db_url, policy={"auto_approve": True},
                         auth={"require": False}, erase={"undo_hours": 0})
    erase_by_mail(config, engine, ERASE_ALICE)
    with factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(UndoWindow)) == 0
        with pytest.raises(undo.UndoRefused) as refused:
            undo.undo(session, config, the_request(session), "admin", "fel")
        assert refused.value.reason == "no_window"
    (done,) = [m for m in outbox_messages(config.path("var/outbox"))
               if m["Subject"].endswith("Er begäran är utförd")]
    assert "ångra" not in done.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_an_admin_undoes_on_the_request_page_and_an_agent_cannot(
    aiohttp_client: MakeClient, world: None, auto_config: Config, engine: Engine,
    agents: None, factory: sessionmaker[Session],  # noqa: F811
) -> None:
    erase_by_mail(auto_config, engine, ERASE_ALICE)
    with factory() as session:
        page = f"/requests/{the_request(session).reference}"
    anna = await _client(aiohttp_client, auto_config, engine)
    await _sign_in(anna, "anna@kundo.se")
    html = await (await anna.get(page)).text()
    assert 'id="undo"' in html and "/undo" not in html.split('id="undo"')[1].split("</div>")[0]
    refused = await anna.post(f"{page}/undo", data={"csrf": _csrf(html), "reason": "fel"})
    assert refused.status == 403
    adam = await _client(aiohttp_client, auto_config, engine)
    await _sign_in(adam, "adam@kundo.se")
    html = await (await adam.get(page)).text()
    assert "The erasure can be undone until" in html and 'action="' + page + '/undo"' in html
    done = await adam.post(f"{page}/undo", data={"csrf": _csrf(html), "reason": "fel person"},
                           allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == f"{page}?done=undone"
    said = await (await adam.get(done.headers["Location"])).text()
    assert "The erasure is undone and what it erased is restored" in said
    with factory() as session:
        assert the_request(session).state == "undone"
    again = await adam.post(f"{page}/undo", data={"csrf": await _token(adam, page),
                                                  "reason": "igen"}, allow_redirects=False)
    assert again.headers["Location"] == f"{page}?error=undo_not_erased"
    html = await (await adam.get(again.headers["Location"])).text()
    assert "Only a done erasure can be undone." in html
    with factory() as session:
        actions = [e.action for e in session.scalars(select(Event).order_by(Event.id))]
    assert "undone" in actions and actions[-1] == "undo_refused"


async def test_an_undo_on_the_page_after_the_window_is_refused_and_says_so(
    aiohttp_client: MakeClient, world: None, auto_config: Config, engine: Engine,
    agents: None, factory: sessionmaker[Session],  # noqa: F811
) -> None:
    start = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        erase_by_mail(auto_config, engine, ERASE_ALICE)
    with factory() as session:
        page = f"/requests/{the_request(session).reference}"
    with time_machine.travel(start + dt.timedelta(hours=80)):
        adam = await _client(aiohttp_client, auto_config, engine)
        await _sign_in(adam, "adam@kundo.se")
        html = await (await adam.get(page)).text()
        assert "The time to undo ended at 2026-11-26 09:00 UTC" in html
        response = await adam.post(f"{page}/undo", data={"csrf": _csrf(html), "reason": "fel"},
                                   allow_redirects=False)
        assert response.headers["Location"] == f"{page}?error=undo_window_closed"
    with factory() as session:
        assert the_request(session).state == "done"
        (event,) = session.scalars(select(Event).where(Event.action == "undo_refused"))
        assert event.detail["closed_at"] == "2026-11-26T09:00:00+00:00"


def test_requests_undo_on_the_command_line_restores_and_then_refuses(
    world: None, auto_config: Config, engine: Engine, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = checksums(engine)
    erase_by_mail(auto_config, engine, ERASE_ALICE)
    with Session(engine) as session:
        reference = the_request(session).reference
    assert reference
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[database]\nurl = "{auto_config.database.url}"\n', encoding="utf-8")
    args = ["--config", str(config_file), "requests", "undo", reference, "--by", "adam"]
    assert main([*args, "--reason", "fel person"]) == 0
    assert f"{reference} is now undone" in capsys.readouterr().out
    assert checksums(engine) == before
    assert main([*args, "--reason", "igen"]) == 1
    assert "only a done erasure can be undone" in capsys.readouterr().err


def test_an_undo_puts_back_what_the_erase_took_through_cascades(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    # An untidy thread: others' posts hang under one of Alice's replies (topic_id),
    # two deep, one with a file, one pointing at the lowest as its parent. Deleting
    # her reply takes the chain (ON DELETE CASCADE) and clears the parent (SET NULL):
    # the vault must keep those rows as well, whichever way the erase deletes.
    with factory.begin() as session:
        ids = [c.id for c in covered(session)]
        reply = session.scalars(select(ForumPost).where(
            ForumPost.author_email == "alice@example.com", ForumPost.topic_id.is_not(None),
            ForumPost.channel_id.in_(ids)).limit(1)).one()
        under = ForumPost(channel_id=reply.channel_id, topic_id=reply.id, body="svar på svaret",
                          author_email="kund7@example.net")
        session.add(under)
        session.flush()
        deeper = ForumPost(channel_id=reply.channel_id, topic_id=under.id, body="och ett till",
                           author_email="kund8@example.net")
        session.add(deeper)
        session.flush()
        session.add_all([
            Attachment(forum_post_id=deeper.id, filename="bild.png", data=b"\x89PNG\x00\xff",
                       size=6),
            ForumPost(channel_id=reply.channel_id, topic_id=reply.topic_id, parent_id=deeper.id,
                      body="citerar", author_email="kund9@example.net"),
        ])
        chain = [under.id, deeper.id]
    before = checksums(engine)
    erase_by_mail(auto_config, engine, ERASE_ALICE)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(ForumPost).where(
            ForumPost.id.in_(chain))) == 0
    with factory.begin() as session:
        undo.undo(session, auto_config, the_request(session), "admin@kundo.example", "fel")
    assert checksums(engine) == before
