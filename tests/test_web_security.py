"""The agents' app against an attacker: sessions that end, headers, throttled sign-in
without lock-out, identical refusals, and no tokens in the access log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.models import Agent, Event, WebSession
from kundo_gdpr.web import auth, sessions
from kundo_gdpr.web import base as web_app
from tests.test_web import (  # noqa: F401  (fixtures)
    PASSWORD,
    Client,
    MakeClient,
    _client,
    _csrf,
    _sign_in,
    _token,
    agents,
)

pytestmark = pytest.mark.usefixtures("agents")


def _quick(config: Config, cap: float = 0.01) -> Config:
    """The same app with the sign-in delay capped low, so many attempts stay fast."""
    return dataclasses.replace(
        config, web=dataclasses.replace(config.web, signin_max_delay_seconds=cap))


def _session_cookie(client: Client) -> str:
    for cookie in client.session.cookie_jar:
        if cookie.key == sessions.COOKIE:
            return cookie.value
    raise AssertionError("no session cookie")


async def _get_with_cookie(aiohttp_client: MakeClient, config: Config, engine: Engine,
                           value: str) -> Any:
    other = await _client(aiohttp_client, config, engine)
    return await other.get("/", cookies={sessions.COOKIE: value}, allow_redirects=False)


async def test_a_cookie_replayed_after_sign_out_gets_the_sign_in_page(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    stolen = _session_cookie(client)
    assert (await _get_with_cookie(aiohttp_client, config, engine, stolen)).status == 200
    await client.post("/logout", data={"csrf": await _token(client)})
    replayed = await _get_with_cookie(aiohttp_client, config, engine, stolen)
    assert replayed.status == 303 and replayed.headers["Location"] == "/login"


async def test_the_cookie_is_a_random_id_and_only_its_hash_is_stored(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    client = await _client(aiohttp_client, config, engine)
    response = await _sign_in(client, "anna@kundo.se")
    set_cookie = next(c for c in response.headers.getall("Set-Cookie")
                      if c.startswith(sessions.COOKIE + "="))
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert "Max-Age" not in set_cookie and "expires" not in set_cookie.lower()
    value = _session_cookie(client)
    with Session(engine) as session:
        (row,) = session.scalars(select(WebSession)).all()
    assert row.token_hash == sessions.token_hash(value) and value not in row.token_hash
    # Using the session does not hand out a new cookie that would live on.
    again = await client.get("/")
    assert not any(c.startswith(sessions.COOKIE + "=")
                   for c in again.headers.getall("Set-Cookie", []))


@pytest.mark.parametrize("idle,expect", [(59, 200), (61, 303)])
async def test_a_session_ends_after_an_hour_without_a_request(
    aiohttp_client: MakeClient, config: Config, engine: Engine,
    monkeypatch: pytest.MonkeyPatch, idle: int, expect: int,
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=idle)
    monkeypatch.setattr(web_app, "utcnow", lambda: later)
    assert (await client.get("/", allow_redirects=False)).status == expect


async def test_a_busy_session_still_ends_after_twelve_hours(
    aiohttp_client: MakeClient, config: Config, engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    start = dt.datetime.now(dt.UTC)
    for minutes in range(0, 12 * 60, 50):  # a request every 50 minutes
        now = start + dt.timedelta(minutes=minutes)
        monkeypatch.setattr(web_app, "utcnow", lambda now=now: now)
        assert (await client.get("/", allow_redirects=False)).status == 200
    end = start + dt.timedelta(hours=12, minutes=1)
    monkeypatch.setattr(web_app, "utcnow", lambda: end)
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_an_admin_ends_an_agents_sessions(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    anna = await _client(aiohttp_client, config, engine)
    await _sign_in(anna, "anna@kundo.se")
    # A plain agent is not shown the agents page and cannot end anyone's sessions.
    assert (await anna.get("/agents")).status == 403
    with Session(engine) as session:
        anna_id = session.scalar(select(Agent.id).where(Agent.email == "anna@kundo.se"))
    refused = await anna.post(f"/agents/{anna_id}/end-sessions",
                              data={"csrf": await _token(anna)})
    assert refused.status == 403
    adam = await _client(aiohttp_client, config, engine)
    await _sign_in(adam, "adam@kundo.se")
    page = await (await adam.get("/agents")).text()
    assert "anna@kundo.se" in page
    done = await adam.post(f"/agents/{anna_id}/end-sessions",
                           data={"csrf": _csrf(page)})
    assert done.status == 200 and "The sessions have ended" in await done.text()
    assert (await anna.get("/", allow_redirects=False)).status == 303
    assert (await adam.get("/", allow_redirects=False)).status == 200
    with Session(engine) as session:
        event = session.scalars(select(Event).where(Event.action == "sessions_ended")).one()
    assert event.actor == "adam@kundo.se" and event.detail["agent"] == "anna@kundo.se"


async def test_a_password_change_ends_every_session_of_the_agent(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    laptop = await _client(aiohttp_client, config, engine)
    phone = await _client(aiohttp_client, config, engine)
    await _sign_in(laptop, "anna@kundo.se")
    await _sign_in(phone, "anna@kundo.se")
    changed = await laptop.post("/account/password", allow_redirects=False, data={
        "csrf": await _token(laptop, "/account"), "current": PASSWORD,
        "new": "a whole new passphrase"})
    assert changed.status == 303 and changed.headers["Location"].startswith("/login")
    for client in (laptop, phone):
        assert (await client.get("/", allow_redirects=False)).status == 303
    assert (await _sign_in(phone, "anna@kundo.se")).status == 401
    assert (await _sign_in(phone, "anna@kundo.se", "a whole new passphrase")).status == 303


PAGES = ["/login", "/", "/?view=all", "/overview", "/agents", "/account", "/requests/NONE",
         "/confirm/not-a-token", "/downloads/not-a-token", "/no-such-page", "/static/app.css"]


async def test_every_answer_has_the_security_headers(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "adam@kundo.se")
    anonymous = await _client(aiohttp_client, config, engine)
    for who in (client, anonymous):
        for path in PAGES:
            response = await who.get(path, allow_redirects=False)
            headers = response.headers
            assert headers["Referrer-Policy"] == "no-referrer", path
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert "style-src 'self'" in headers["Content-Security-Policy"], path
            assert "script-src 'none'" in headers["Content-Security-Policy"], path
            if path != "/static/app.css":
                assert headers["Cache-Control"] == "no-store", (path, response.status)


async def test_fifty_wrong_passwords_from_one_client_never_lock_the_agent_out(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    quick = _quick(config)
    attacker = await _client(aiohttp_client, quick, engine)
    for _ in range(50):
        assert (await _sign_in(attacker, "anna@kundo.se", "guess")).status == 401
    anna = await _client(aiohttp_client, quick, engine)
    assert (await _sign_in(anna, "anna@kundo.se")).status == 303
    assert (await anna.get("/", allow_redirects=False)).status == 200
    # The attacker's own client with the right password gets in too: slowed, never locked.
    assert (await _sign_in(attacker, "anna@kundo.se")).status == 303
    with Session(engine) as session:
        failed = session.scalar(select(func.count()).select_from(Event).where(
            Event.action == "sign_in_failed"))
    assert failed == 50  # every failure is audited


async def test_unknown_wrong_and_throttled_sign_ins_get_the_same_answer(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    client = await _client(aiohttp_client, _quick(config), engine)
    await client.get("/login")  # the visitor's cookie, so the CSRF token stays the same

    async def answer(email: str, password: str) -> tuple[int, str]:
        response = await _sign_in(client, email, password)
        return response.status, await response.text()

    unknown = await answer("nobody@kundo.se", "guess")
    wrong = await answer("anna@kundo.se", "guess")
    for _ in range(auth.FREE + 3):
        await answer("anna@kundo.se", "guess")
    throttled = await answer("anna@kundo.se", "guess")
    assert unknown == wrong == throttled
    assert unknown[0] == 401 and "Wrong email or password." in unknown[1]
    assert "nobody@kundo.se" not in unknown[1]


def test_the_delay_grows_with_failures_per_address_and_per_account_up_to_the_cap() -> None:
    now = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
    clock = [now]
    throttle = auth.Throttle(cap=4.0, clock=lambda: clock[0])
    delays = []
    for _ in range(10):
        delays.append(throttle.delay("addr:10.0.0.1", "acct:anna@kundo.se"))
        throttle.failed("addr:10.0.0.1", "acct:anna@kundo.se")
    assert delays[: auth.FREE] == [0.0] * auth.FREE
    assert delays[auth.FREE:auth.FREE + 4] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) == 4.0 and delays[-1] == 4.0
    # Another address trying anna's account is slowed by the account's failures ...
    assert throttle.delay("addr:10.0.0.2", "acct:anna@kundo.se") == 4.0
    # ... and the guessing address is slow for other accounts too.
    assert throttle.delay("addr:10.0.0.1", "acct:bo@kundo.se") == 4.0
    assert throttle.delay("addr:10.0.0.2", "acct:bo@kundo.se") == 0.0
    clock[0] = now + auth.WINDOW + dt.timedelta(seconds=1)
    assert throttle.delay("addr:10.0.0.1", "acct:anna@kundo.se") == 0.0


async def test_the_access_log_never_holds_a_link_token(
    aiohttp_client: MakeClient, config: Config, engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    client = await _client(aiohttp_client, config, engine)
    await client.get("/downloads/SECRETdownloadTOKEN123")
    await client.get("/confirm/SECRETconfirmTOKEN456?lang=sv")
    text = caplog.text
    assert "/downloads/…" in text and "/confirm/…" in text
    assert "SECRET" not in text


async def test_public_pages_show_no_agent_navigation(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "adam@kundo.se")
    for path in ("/confirm/not-a-token", "/downloads/not-a-token"):
        html = await (await client.get(path)).text()
        assert "/overview" not in html and "adam@kundo.se" not in html, path
        assert not re.search(r'action="/logout"', html)
    queue = await (await client.get("/")).text()
    assert "/overview" in queue and "adam@kundo.se" in queue


def test_set_password_ends_sessions(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        agent = auth.add_agent(session, "cleo@kundo.se", PASSWORD)
        sessions.start(session, agent, dt.datetime.now(dt.UTC))
        sessions.start(session, agent, dt.datetime.now(dt.UTC))
        assert auth.set_password(session, agent, "another long one") == 2
        assert auth.authenticate(session, "CLEO@kundo.se", "another long one") is agent
        assert auth.authenticate(session, "cleo@kundo.se", PASSWORD) is None
