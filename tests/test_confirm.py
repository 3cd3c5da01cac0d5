"""Confirmation by mail (`policy.confirm_by_mail`), end to end with the real pipeline.

A request that passes its checks waits until the editor confirms it, by the
link (GET shows a button, POST confirms) or by replying with the code; after
72 hours it expires. The confirmation only ever goes to the editor's stored
address. Time is moved by passing `now`, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.models import ChatSession, Confirmation, Event, Request, utcnow
from kundo_gdpr.stages import confirm, sweep
from kundo_gdpr.web import make_app
from tests.conftest import make_config
from tests.helpers import SV_ASSERTION, drop, outbox_messages, request_mail
from tests.test_pipeline import run_all, worker_for

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
ERASE_ALICE = (
    "Hej!\n\nVår kund alice@example.com vill bli bortglömd. Radera allt i forum, "
    f"e-post och chatt.\n\n{SV_ASSERTION}\n\n"
    "Skicka gärna bekräftelsen till min kollega kim@cykelbolaget.se.\n\n"
    "Med vänliga hälsningar\nEva\n"
)


@pytest.fixture
def confirm_config(tmp_path: Path, db_url: str) -> Config:
    # Unsigned mail is trusted here; tests/test_auth.py covers authentication.
    return make_config(
        tmp_path, db_url,
        policy={"auto_approve": True, "confirm_by_mail": True},
        auth={"require": False},
    )


def _send(config: Config, engine: Engine, raw: bytes, name: str) -> None:
    drop(config.path("var/inbox"), raw, name)
    run_all(worker_for(config, engine))


@pytest.fixture
def asked(world: None, confirm_config: Config, engine: Engine) -> str:
    """Eva's erase request, waiting for her confirmation; the link's token."""
    raw = request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE,
                       extra_headers={"Reply-To": "thief@evil.example"})
    _send(confirm_config, engine, raw, "erase-alice")
    (mail,) = _outbox(confirm_config)
    found = re.search(r"/confirm/([A-Za-z0-9_-]+)", mail.get_content())
    assert found, mail.get_content()
    return found.group(1)


def _outbox(config: Config) -> list[EmailMessage]:
    return outbox_messages(config.path("var/outbox"))


def _subjects(config: Config) -> list[str]:
    return [str(m["Subject"]).split("] ", 1)[1] for m in _outbox(config)]


def _request(factory: sessionmaker[Session], sender: str = "eva@cykelbolaget.se") -> Request:
    with factory() as session:
        request = session.scalars(select(Request).where(Request.sender == sender)).one()
        session.expunge(request)
        return request


def _alice_chats(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(ChatSession).where(
            ChatSession.visitor_email == "alice@example.com")) or 0


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def _post(client: Client, token: str) -> Any:
    page = await client.get("/login")
    return await client.post(f"/confirm/{token}", data={"csrf": _csrf(await page.text())})


def test_the_confirmation_goes_only_to_the_stored_address_and_nothing_happens_yet(
    asked: str, confirm_config: Config, factory: sessionmaker[Session],
) -> None:
    request = _request(factory)
    assert request.state == confirm.UNCONFIRMED
    assert _alice_chats(factory) == 2
    (mail,) = _outbox(confirm_config)
    # Not Reply-To, not the address typed in the body: the desk's address.
    assert str(mail["To"]) == "eva@cykelbolaget.se"
    assert mail["Cc"] is None and mail["Bcc"] is None
    assert _subjects(confirm_config) == ["Bekräfta er begäran"]
    code = re.search(r"koden (\d{4}-\d{4})", mail.get_content())
    assert code
    with factory() as session:
        row = session.scalars(select(Confirmation)).one()
        # Only hashes are stored: the database cannot confirm anything.
        assert row.token_hash == hashlib.sha256(asked.encode()).hexdigest()
        assert row.code_hash == hashlib.sha256(code.group(1).replace("-", "").encode()).hexdigest()
        assert asked not in repr([getattr(row, c.key) for c in Confirmation.__table__.columns])
        assert row.sent_to == "eva@cykelbolaget.se"
        assert row.expires_at - row.created_at == dt.timedelta(hours=72)
    assert len(asked) >= 40  # secrets.token_urlsafe(32)


async def test_get_shows_a_button_and_only_post_confirms_then_the_request_runs(
    asked: str, confirm_config: Config, engine: Engine, factory: sessionmaker[Session],
    aiohttp_client: MakeClient,
) -> None:
    client = await aiohttp_client(make_app(confirm_config, engine))
    for _ in range(2):  # a mail scanner fetching the link changes nothing
        page = await client.get(f"/confirm/{asked}")
        assert page.status == 200
        html = await page.text()
        assert "Bekräfta begäran" in html and 'method="post"' in html
    assert _request(factory).state == confirm.UNCONFIRMED

    done = await _post(client, asked)
    assert done.status == 200
    assert "är bekräftad" in await done.text()
    assert _request(factory).state == "approved"

    again = await _post(client, asked)
    assert again.status == 410
    run_all(worker_for(confirm_config, engine))
    assert _request(factory).state == "done"
    assert _alice_chats(factory) == 1
    assert [str(m["To"]) for m in _outbox(confirm_config)] == ["eva@cykelbolaget.se"] * 3
    assert _subjects(confirm_config) == [
        "Bekräfta er begäran", "Vi har tagit emot er begäran", "Er begäran är utförd",
    ]
    with factory() as session:
        actors = [(e.action, e.actor) for e in session.scalars(select(Event).order_by(Event.id))]
    assert ("confirmed", "editor:eva@cykelbolaget.se") in actors


async def test_a_wrong_token_is_refused(
    asked: str, confirm_config: Config, engine: Engine, factory: sessionmaker[Session],
    aiohttp_client: MakeClient,
) -> None:
    client = await aiohttp_client(make_app(confirm_config, engine))
    wrong = asked[:-4] + ("AAAA" if not asked.endswith("AAAA") else "BBBB")
    assert (await client.get(f"/confirm/{wrong}")).status == 404
    assert (await _post(client, wrong)).status == 404
    assert (await _post(client, "x")).status == 404
    assert _request(factory).state == confirm.UNCONFIRMED


async def test_an_unconfirmed_request_expires_after_72_hours_and_the_editor_is_told(
    asked: str, confirm_config: Config, engine: Engine, factory: sessionmaker[Session],
    aiohttp_client: MakeClient,
) -> None:
    almost = utcnow() + dt.timedelta(hours=71, minutes=59)
    assert sweep.expire_one(factory, confirm_config, now=almost) is False
    assert _request(factory).state == confirm.UNCONFIRMED
    later = utcnow() + dt.timedelta(hours=72, minutes=1)
    assert sweep.expire_one(factory, confirm_config, now=later) is True
    assert sweep.expire_one(factory, confirm_config, now=later) is False
    run_all(worker_for(confirm_config, engine))
    assert _request(factory).state == confirm.CONFIRMATION_EXPIRED
    assert _alice_chats(factory) == 2
    expired = _outbox(confirm_config)[-1]
    assert str(expired["To"]) == "eva@cykelbolaget.se"
    assert _subjects(confirm_config)[-1] == "Begäran har inte bekräftats och har avslutats"
    assert "72 timmar" in expired.get_content()
    client = await aiohttp_client(make_app(confirm_config, engine))
    assert (await _post(client, asked)).status == 410
    assert _request(factory).state == confirm.CONFIRMATION_EXPIRED


def test_the_worker_expires_a_confirmation_whose_time_is_up(
    asked: str, confirm_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        session.execute(update(Confirmation).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    run_all(worker_for(confirm_config, engine))
    assert _request(factory).state == confirm.CONFIRMATION_EXPIRED


def _code(config: Config) -> str:
    found = re.search(r"koden (\d{4}-\d{4})", _outbox(config)[0].get_content())
    assert found
    return found.group(1)


def test_a_reply_from_the_stored_address_with_the_code_confirms(
    asked: str, confirm_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    code = _code(confirm_config)
    reply = request_mail("Eva Ek <eva@cykelbolaget.se>", f"Hej, här är koden: {code}\n",
                         subject="Sv: Bekräfta er begäran")
    _send(confirm_config, engine, reply, "reply")
    with factory() as session:
        states = dict(session.execute(select(Request.subject_line, Request.state)).all())
    assert states["GDPR-begäran"] == "done"
    assert states["Sv: Bekräfta er begäran"] == "ignored"  # stored, never answered
    assert _alice_chats(factory) == 1
    assert [str(m["To"]) for m in _outbox(confirm_config)] == ["eva@cykelbolaget.se"] * 3


def test_the_code_from_another_address_confirms_nothing(
    asked: str, confirm_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    code = _code(confirm_config)
    _send(confirm_config, engine,
          request_mail("thief@evil.example", f"Koden: {code}\n"), "thief")
    assert _request(factory).state == confirm.UNCONFIRMED
    assert _alice_chats(factory) == 2
    assert "eva@cykelbolaget.se" in [str(m["To"]) for m in _outbox(confirm_config)]
    assert all(str(m["To"]) != "eva@cykelbolaget.se" or "Bekräfta" in str(m["Subject"])
               for m in _outbox(confirm_config))


def test_a_new_request_that_carries_the_code_confirms_and_is_still_a_request(
    asked: str, confirm_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    code = _code(confirm_config)
    body = (f"Kod: {code}\n\nRadera också bertil@example.org i forumet.\n\n{SV_ASSERTION}\n")
    _send(confirm_config, engine,
          request_mail("Eva Ek <eva@cykelbolaget.se>", body, subject="Radering"), "second")
    with factory() as session:
        states = dict(session.execute(select(Request.subject_line, Request.state)).all())
    assert states["GDPR-begäran"] == "done"
    # Not swallowed as a mere reply: it waits for its own confirmation.
    assert states["Radering"] == confirm.UNCONFIRMED


def test_an_unauthenticated_reply_with_the_code_confirms_nothing(
    world: None, tmp_path: Path, db_url: str, engine: Engine, factory: sessionmaker[Session],
) -> None:
    # auth.require on: the unsigned request is asked for confirmation (and goes to
    # review after it), but an unsigned reply cannot be the confirmation.
    config = make_config(tmp_path, db_url, policy={"confirm_by_mail": True})
    _send(config, engine, request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase")
    request = _request(factory)
    assert request.state == confirm.UNCONFIRMED
    assert "sender_unauthenticated" in request.problems
    code = _code(config)
    _send(config, engine, request_mail("eva@cykelbolaget.se", f"Koden: {code}\n",
                                       subject="Sv: Bekräfta"), "reply")
    with factory() as session:
        states = dict(session.execute(select(Request.subject_line, Request.state)).all())
        assert session.scalars(select(Confirmation.state)).one() == "pending"
    assert states["GDPR-begäran"] == confirm.UNCONFIRMED
    assert _alice_chats(factory) == 2
