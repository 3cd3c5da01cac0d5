"""The review queue over HTTP: sign-in, CSRF, permissions, escaping, decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.models import Agent, Request
from kundo_gdpr.models.queue import APPROVED, NEEDS_REVIEW, REJECTED
from kundo_gdpr.web import auth, make_app
from tests.helpers import SV_ASSERTION, drop, request_mail
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for

ROOT = Path(__file__).resolve().parent.parent
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
PASSWORD = "correct horse battery"


@pytest.fixture
def agents(factory: sessionmaker[Session]) -> None:
    """anna is an agent; adam is an admin."""
    with factory.begin() as session:
        auth.add_agent(session, "anna@kundo.se", PASSWORD)
        auth.add_agent(session, "adam@kundo.se", PASSWORD, is_admin=True)


@pytest.fixture
def erase_alice(world: None, config: Config, engine: Engine) -> str:
    """An erase request for alice waiting for review; its reference."""
    drop(config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase-alice")
    run_all(worker_for(config, engine))
    return _reference_in(engine, NEEDS_REVIEW)


def _reference_in(engine: Engine, state: str) -> str:
    with Session(engine) as session:
        ref = session.scalar(select(Request.reference).where(Request.state == state))
    assert ref
    return ref


async def _client(aiohttp_client: MakeClient, config: Config, engine: Engine) -> Client:
    return await aiohttp_client(make_app(config, engine))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def _sign_in(client: Client, email: str, password: str = PASSWORD) -> Any:
    page = await client.get("/login")
    token = _csrf(await page.text())
    return await client.post("/login", data={"csrf": token, "email": email,
                                             "password": password}, allow_redirects=False)


async def _token(client: Client, path: str = "/") -> str:
    return _csrf(await (await client.get(path)).text())


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/requests/X"), ("POST", "/requests/X/approve"),
    ("POST", "/requests/X/reject"), ("POST", "/logout"),
])
async def test_every_page_but_sign_in_needs_an_agent(
    aiohttp_client: MakeClient, config: Config, engine: Engine, method: str, path: str
) -> None:
    client = await _client(aiohttp_client, config, engine)
    response = await client.request(method, path, allow_redirects=False)
    assert response.status in (303, 403)
    if response.status == 303:
        assert response.headers["Location"] == "/login"


async def test_it_signs_in_with_a_cookie_that_is_httponly_and_strict(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None
) -> None:
    client = await _client(aiohttp_client, config, engine)
    response = await _sign_in(client, "Anna@Kundo.se")
    assert response.status == 303
    cookie = response.headers.getall("Set-Cookie")[0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "anna" not in cookie  # encrypted, not merely signed
    assert (await client.get("/")).status == 200


async def test_it_rejects_a_form_without_the_csrf_token(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "adam@kundo.se")
    for data in ({}, {"csrf": "forged"}):
        response = await client.post(f"/requests/{erase_alice}/approve", data=data)
        assert response.status == 403
    assert _reference_in(engine, NEEDS_REVIEW) == erase_alice
    login = await client.post("/login", data={"email": "adam@kundo.se", "password": PASSWORD})
    assert login.status == 403


async def test_approve_changes_the_state_and_shows_in_the_audit_trail(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    response = await client.post(f"{page}/approve", data={"csrf": await _token(client, page)})
    assert response.status == 200
    html = await response.text()
    assert f"{erase_alice} · {APPROVED}" in html
    assert re.search(r"<td>anna@kundo.se</td><td>approved</td>", html)
    assert "receipt" in html  # the reply queued at the check, with its state


async def test_reject_needs_a_reason_and_queues_the_rejection(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    token = await _token(client, page)
    await client.post(f"{page}/reject", data={"csrf": token, "reason": " "})
    assert _reference_in(engine, NEEDS_REVIEW) == erase_alice
    response = await client.post(f"{page}/reject", data={"csrf": token, "reason": "Fel kund"})
    html = await response.text()
    assert REJECTED in html and "Fel kund" in html and "rejected" in html


async def test_only_an_admin_approves_erasure_when_the_policy_says_so(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    strict = dataclasses.replace(
        config, policy=dataclasses.replace(config.policy, erase_needs_admin=True))
    page = f"/requests/{erase_alice}"
    agent = await _client(aiohttp_client, strict, engine)
    await _sign_in(agent, "anna@kundo.se")
    response = await agent.post(f"{page}/approve", data={"csrf": await _token(agent, page)})
    assert response.status == 403
    assert _reference_in(engine, NEEDS_REVIEW) == erase_alice
    admin = await _client(aiohttp_client, strict, engine)
    await _sign_in(admin, "adam@kundo.se")
    await admin.post(f"{page}/approve", data={"csrf": await _token(admin, page)})
    assert _reference_in(engine, APPROVED) == erase_alice


async def test_a_hostile_subject_and_html_body_are_shown_inert(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, world: None
) -> None:
    raw = request_mail(
        "Eva Ek <eva@cykelbolaget.se>", "", subject="<script>alert(1)</script>")
    html_body = (f"<html><body><script>alert(2)</script><p>Radera alice@example.com i forum."
                 f"</p><img src=x onerror=alert(3)><p>{SV_ASSERTION}</p></body></html>")
    raw = raw.replace(b"Content-Type: text/plain", b"Content-Type: text/html", 1)
    raw = raw.split(b"\n\n", 1)[0] + b"\n\n" + html_body.encode() + b"\n"
    drop(config.path("var/inbox"), raw, "hostile")
    run_all(worker_for(config, engine))
    with Session(engine) as session:
        reference = session.scalar(select(Request.reference))
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    for path in ("/", f"/requests/{reference}", f"/?q={reference}"):
        response = await client.get(path)
        html = await response.text()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "script-src 'none'" in response.headers["Content-Security-Policy"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or reference in html
    page = await (await client.get(f"/requests/{reference}")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


async def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await _client(aiohttp_client, config, engine)
    for _ in range(auth.MAX_FAILURES):
        assert (await _sign_in(client, "anna@kundo.se", "wrong")).status == 401
    locked = await _sign_in(client, "anna@kundo.se")
    assert locked.status == 401 and "15" in await locked.text()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    monkeypatch.setattr(auth, "utcnow", lambda: later)
    assert (await _sign_in(client, "anna@kundo.se")).status == 303
    with Session(engine) as session:
        anna = session.scalar(select(Agent).where(Agent.email == "anna@kundo.se"))
        assert anna is not None and anna.failed_logins == 0 and anna.locked_until is None


async def test_sign_out_ends_the_session(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    await client.post("/logout", data={"csrf": await _token(client)})
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303


async def test_the_language_follows_the_browser_and_the_switch(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None
) -> None:
    client = await _client(aiohttp_client, config, engine)
    sv = await client.get("/login", headers={"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"})
    assert "Logga in" in await sv.text()
    en = await client.get("/login?lang=en", headers={"Accept-Language": "sv"})
    assert "Sign in" in await en.text()
    again = await client.get("/login", headers={"Accept-Language": "sv"})
    assert "Sign in" in await again.text()  # the switch is remembered


def test_agents_add_hashes_the_password_and_refuses_a_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kundo_gdpr import db
    from kundo_gdpr.cli import main

    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    cfg = str(tmp_path / "config.toml")
    monkeypatch.setenv("KUNDO_GDPR_AGENT_PASSWORD", PASSWORD)
    assert main(["--config", cfg, "agents", "add", "Adam@Kundo.se", "--admin"]) == 0
    assert main(["--config", cfg, "agents", "add", "adam@kundo.se"]) == 1
    assert "already exists" in capsys.readouterr().err
    from kundo_gdpr import config as config_module

    engine = db.make_engine(config_module.load(cfg).database_url())
    with Session(engine) as session:
        adam = session.scalar(select(Agent))
        assert adam is not None and adam.email == "adam@kundo.se" and adam.is_admin
        assert adam.password_hash.startswith("$argon2") and PASSWORD not in adam.password_hash
    engine.dispose()


async def test_the_queue_filters_by_state_due_date_and_search(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kundo_gdpr.web import queries

    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")

    async def listed(query: str) -> bool:
        return erase_alice in await (await client.get(f"/?{query}")).text()

    assert await listed("state=needs_review") and not await listed("state=done")
    assert await listed("q=eva@cykelbolaget") and await listed("q=alice@example")
    assert not await listed("q=nobody@nowhere")
    assert not await listed("due=overdue") and not await listed("due=week")
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    monkeypatch.setattr(queries, "utcnow", lambda: late)
    assert await listed("due=overdue") and await listed("due=week")
