"""The agents' app against an attacker: sessions that end, headers, throttled sign-in
without lock-out, identical refusals, and no tokens in the access log."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import re
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config
from kundo_gdpr.models import Agent, Event, SigninFailure, WebSession
from kundo_gdpr.web import auth, sessions, throttle
from kundo_gdpr.web import base as web_app
from kundo_gdpr.web import client as web_client
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


ATTACKER = "203.0.113.9"
ANNA = "198.51.100.7"


def _behind_proxy(config: Config) -> Config:
    """The app behind a proxy on loopback: X-Forwarded-For says who the client is."""
    return dataclasses.replace(
        config, web=dataclasses.replace(config.web, trusted_proxies=("127.0.0.1", "::1")))


async def _attempt(client: Client, email: str, password: str, forwarded_for: str) -> Any:
    """A sign-in through the proxy (or claiming to be), from the address given."""
    headers = {"X-Forwarded-For": forwarded_for}
    page = await client.get("/login", headers=headers)
    return await client.post("/login", headers=headers, allow_redirects=False, data={
        "csrf": _csrf(await page.text()), "email": email, "password": password})


def _failures(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return [e.detail for e in session.scalars(select(Event).where(
            Event.action == "sign_in_failed").order_by(Event.id))]


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
    quick = _behind_proxy(_quick(config))
    attacker = await _client(aiohttp_client, quick, engine)
    for _ in range(50):
        response = await _attempt(attacker, "anna@kundo.se", "guess", ATTACKER)
        assert response.status == 401
    anna = await _client(aiohttp_client, quick, engine)
    assert (await _attempt(anna, "anna@kundo.se", PASSWORD, ANNA)).status == 303
    assert (await anna.get("/", allow_redirects=False)).status == 200
    # The attacker's own client with the right password gets in too: slowed, never locked.
    assert (await _attempt(attacker, "anna@kundo.se", PASSWORD, ATTACKER)).status == 303
    failures = _failures(engine)
    assert len(failures) == 50  # every failure is audited, with the client's address
    assert {f["address"] for f in failures} == {ATTACKER}
    assert failures[-1]["delay_seconds"] > 0  # the later ones were slowed down


async def test_failures_on_one_web_process_slow_sign_ins_on_another_down(
    aiohttp_client: MakeClient, config: Config, engine: Engine, db_url: str
) -> None:
    """Two app instances, each with its own engine on the one database, as two
    processes behind one proxy would be."""
    quick = _behind_proxy(_quick(config))
    other_engine = db.make_engine(db_url)
    try:
        first = await _client(aiohttp_client, quick, engine)
        second = await _client(aiohttp_client, quick, other_engine)
        for _ in range(throttle.FREE):
            await _attempt(first, "anna@kundo.se", "guess", ATTACKER)
        with Session(other_engine) as session:
            names = throttle.keys(ATTACKER, "anna@kundo.se")
            assert throttle.delay(session, 4.0, dt.datetime.now(dt.UTC), *names) == 0.25
        # The next guess, on the other process, is slowed; so is the account from elsewhere.
        await _attempt(second, "anna@kundo.se", "guess", ATTACKER)
        await _attempt(second, "anna@kundo.se", "guess", "192.0.2.55")
        await _attempt(second, "bo@kundo.se", "guess", "192.0.2.56")
        slowed = [(f["address"], f["account"], f["delay_seconds"] > 0)
                  for f in _failures(engine)[throttle.FREE:]]
        assert slowed == [(ATTACKER, "anna@kundo.se", True),
                          ("192.0.2.55", "anna@kundo.se", True),
                          ("192.0.2.56", "bo@kundo.se", False)]
        # The right password on the first process still gets in, and the session it
        # starts is good on the other process too.
        assert (await _attempt(first, "anna@kundo.se", PASSWORD, ANNA)).status == 303
        cookie = {sessions.COOKIE: _session_cookie(first)}
        assert (await second.get("/", cookies=cookie, allow_redirects=False)).status == 200
    finally:
        other_engine.dispose()


async def test_a_spoofed_forwarded_for_from_a_peer_that_is_not_a_proxy_is_ignored(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    # 127.0.0.1 (the test client) is not a trusted proxy: only 10.0.0.0/8 is.
    quick = dataclasses.replace(_quick(config), web=dataclasses.replace(
        _quick(config).web, trusted_proxies=("10.0.0.0/8",)))
    guesser = await _client(aiohttp_client, quick, engine)
    for n in range(throttle.FREE + 2):
        # A new made-up address on every try would dodge the address's count.
        await _attempt(guesser, f"user{n}@kundo.se", "guess", f"10.9.8.{n}, 198.51.100.{n}")
    failures = _failures(engine)
    assert {f["address"] for f in failures} == {"127.0.0.1"}
    assert failures[-1]["delay_seconds"] > 0  # slowed by its real address's count


async def test_behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_address(
    aiohttp_client: MakeClient, config: Config, engine: Engine
) -> None:
    proxied = await _client(aiohttp_client, _behind_proxy(_quick(config)), engine)
    # The client wrote "1.2.3.4" itself; the proxy appended the address it saw.
    await _attempt(proxied, "anna@kundo.se", "guess", f"1.2.3.4, {ATTACKER}")
    assert _failures(engine)[-1]["address"] == ATTACKER


def test_the_delay_grows_with_failures_per_address_and_per_account_up_to_the_cap(
    factory: sessionmaker[Session],
) -> None:
    now = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
    guesser = throttle.keys("10.0.0.1", "anna@kundo.se")

    def delay(*names: str, at: dt.datetime = now) -> float:
        with factory() as session:
            return throttle.delay(session, 4.0, at, *names)

    delays = []
    for _ in range(10):
        delays.append(delay(*guesser))
        with factory.begin() as session:
            throttle.failed(session, now, *guesser)
    assert delays[: throttle.FREE] == [0.0] * throttle.FREE
    assert delays[throttle.FREE:throttle.FREE + 4] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) == 4.0 and delays[-1] == 4.0
    # Another address trying anna's account is slowed by the account's failures ...
    assert delay(*throttle.keys("10.0.0.2", " Anna@Kundo.se")) == 4.0
    # ... and the guessing address is slow for other accounts too.
    assert delay(*throttle.keys("10.0.0.1", "bo@kundo.se")) == 4.0
    assert delay(*throttle.keys("10.0.0.2", "bo@kundo.se")) == 0.0
    # A right password clears the account's count, not the address's.
    with factory.begin() as session:
        throttle.succeeded(session, guesser[1])
    assert delay(*throttle.keys("10.0.0.2", "anna@kundo.se")) == 0.0
    assert delay(*guesser) == 4.0
    later = now + throttle.WINDOW + dt.timedelta(seconds=1)
    assert delay(*guesser, at=later) == 0.0


def test_failures_older_than_the_window_are_deleted_and_count_from_one_again(
    factory: sessionmaker[Session],
) -> None:
    now = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
    with factory.begin() as session:
        for n in range(5):
            throttle.failed(session, now, *throttle.keys(f"10.0.0.{n}", "anna@kundo.se"))
    later = now + throttle.WINDOW + dt.timedelta(minutes=1)
    with factory.begin() as session:
        throttle.failed(session, later, *throttle.keys("10.0.0.0", "anna@kundo.se"))
    with factory() as session:
        rows = session.scalars(select(SigninFailure)).all()
        assert sorted(r.failures for r in rows) == [1, 1]  # the address and the account
        assert all(r.last_at == later for r in rows)


def test_failures_counted_at_once_by_several_processes_are_all_counted(
    factory: sessionmaker[Session],
) -> None:
    now = dt.datetime.now(dt.UTC)
    names = throttle.keys("10.0.0.1", "anna@kundo.se")

    def guess(_n: int) -> None:
        with factory.begin() as session:
            throttle.failed(session, now, *names)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(guess, range(40)))
    with factory() as session:
        assert sorted(r.failures for r in session.scalars(select(SigninFailure))) == [40, 40]


@pytest.mark.parametrize("peer,forwarded,expect", [
    ("127.0.0.1", [], "127.0.0.1"),
    ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a proxy: header ignored
    ("10.0.0.2", [], "10.0.0.2"),  # a proxy that said nothing
    ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
    ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the left part is the client's
    ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.3"], "198.51.100.1"),  # two proxies
    ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # two header lines
    ("10.0.0.2", ["10.0.0.4, 10.0.0.3"], "10.0.0.4"),  # proxies all the way
    ("10.0.0.2", ["198.51.100.1, not-an-address"], "10.0.0.2"),  # nonsense from a proxy
    ("10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),
    ("10.0.0.2", ["[2001:db8::1]:4711"], "2001:db8::1"),
    ("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # IPv4 peer on an IPv6 socket
    ("::1", ["2001:db8::7"], "2001:db8::7"),
])
def test_the_client_address(peer: str, forwarded: list[str], expect: str) -> None:
    trusted = web_client.networks(("10.0.0.0/8", "::1"))
    assert web_client.client(peer, forwarded, trusted) == expect


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
