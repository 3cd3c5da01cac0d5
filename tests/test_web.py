"""The review queue over HTTP: sign-in, CSRF, permissions, escaping, decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import re
import shutil
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import i18n
from kundo_gdpr.config import Config
from kundo_gdpr.models import Agent, Event, Export, OutboundMail, Request
from kundo_gdpr.models.queue import APPROVED, NEEDS_REVIEW, REJECTED
from kundo_gdpr.stages import decide, run
from kundo_gdpr.stages.parse import add_months
from kundo_gdpr.web import auth, make_app, queries
from tests.helpers import SV_ASSERTION, drop, request_mail
from tests.test_pipeline import ERASE_ALICE, EXPORT_BERTIL, fingerprint, run_all, worker_for

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


POSTS = ["/requests/X/approve", "/requests/X/reject", "/requests/X/correct",
         "/requests/X/recheck", "/requests/X/extend", "/requests/X/replies/1/resend"]


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/overview"), ("GET", "/requests/X"),
    ("GET", "/requests/X/exports/1"), ("POST", "/logout"),
    *[("POST", p) for p in POSTS],
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


async def test_approve_asks_for_confirmation_then_changes_the_state_and_says_what_next(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "adam@kundo.se")
    page = f"/requests/{erase_alice}"
    # The request page offers Approve as a way to the confirmation page, not the act.
    asked = await client.post(f"{page}/approve", data={"csrf": await _token(client, page)})
    confirm = await asked.text()
    assert asked.status == 200 and str(asked.url).endswith(f"{page}/approve")
    assert _reference_in(engine, NEEDS_REVIEW) == erase_alice
    kinds = confirm.split('id="confirm-kinds">', 1)[1].split("</dd>", 1)[0]
    assert kinds == "erasure"  # the name the replies use too (mail_templates/en/strings.toml)
    assert "alice@example.com" in confirm.split('id="confirm-subjects">', 1)[1]
    assert "forum" in confirm.split('id="confirm-channels">', 1)[1].split("</dd>", 1)[0]
    assert "cannot be undone" in confirm and "will be deleted" in confirm
    response = await client.post(f"{page}/approve",
                                 data={"csrf": _csrf(confirm), "confirm": "yes"})
    assert response.status == 200 and "done=approved" in str(response.url)
    html = await response.text()
    assert f"{erase_alice} · {APPROVED}" in html
    assert "The erasure now runs in the background" in html  # what happened, what next
    assert re.search(r"<td>adam@kundo.se</td><td>Approved</td>", html)
    assert "Reply: receipt" in html  # the reply queued at the check, in words
    # The audit details read as words, not codes or JSON: the parse named alice.
    assert "Data subjects: alice@example.com" in html
    # The trail starts where `requests show` starts: the mail being stored.
    assert "<td>the system</td><td>The mail was received and stored</td>" in html
    assert "mail_stored" not in html.split('id="audit"', 1)[1].replace(
        'data-action="mail_stored"', "")


async def test_audit_details_are_shown_escaped(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    reason = "<img src=x onerror=alert(5)> fel kund"
    response = await client.post(
        f"{page}/reject", data={"csrf": await _token(client, page), "reason": reason}
    )
    html = await response.text()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(5)&gt; fel kund" in html


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
    with Session(engine) as session:
        reply = session.scalars(select(OutboundMail).where(
            OutboundMail.purpose == "rejected")).one()
    _, _, body = _body(reply.raw)
    assert reply.to_addr == "eva@cykelbolaget.se" and "\nFel kund\n" in body
    assert ("anna@kundo.se", "rejected") in _events(engine)


async def test_only_an_admin_approves_erasure_when_the_policy_says_so(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    strict = dataclasses.replace(
        config, policy=dataclasses.replace(config.policy, erase_needs_admin=True))
    page = f"/requests/{erase_alice}"
    agent = await _client(aiohttp_client, strict, engine)
    await _sign_in(agent, "anna@kundo.se")
    # Not offered, with the reason; and refused if posted all the same.
    shown = await (await agent.get(page)).text()
    assert 'id="approve"' not in shown and "only an admin may approve an erasure" in shown
    assert (await agent.get(f"{page}/approve")).status == 403
    response = await agent.post(f"{page}/approve",
                                data={"csrf": await _token(agent, page), "confirm": "yes"})
    assert response.status == 403
    assert _reference_in(engine, NEEDS_REVIEW) == erase_alice
    admin = await _client(aiohttp_client, strict, engine)
    await _sign_in(admin, "adam@kundo.se")
    assert 'id="approve"' in await (await admin.get(page)).text()
    await admin.post(f"{page}/approve",
                     data={"csrf": await _token(admin, page), "confirm": "yes"})
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


# -- every action needs the form's CSRF token ---------------------------------------


@pytest.mark.parametrize("path", POSTS)
async def test_every_action_is_refused_without_the_csrf_token(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    path: str,
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "adam@kundo.se")
    before = _events(engine)
    data = {"reason": "x", "months": "1", "subjects": "bertil@example.org", "kinds": "erase"}
    for forged in ({}, {"csrf": "forged"}):
        response = await client.post(path.replace("X", erase_alice), data={**data, **forged})
        assert response.status == 403
    assert _events(engine) == before  # nothing happened, nothing was recorded


def _events(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(e.actor, e.action) for e in session.scalars(select(Event).order_by(Event.id))]


# -- the request page -----------------------------------------------------------------


async def test_the_request_page_says_each_finding_in_plain_words_in_both_languages(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    en = await (await client.get(f"/requests/{erase_alice}?lang=en")).text()
    assert "We could not confirm that the mail comes from the sender" in en
    sv = await (await client.get(f"/requests/{erase_alice}?lang=sv")).text()
    assert "Det gick inte att bekräfta att mejlet kommer från avsändarens domän" in sv
    assert "väntar på granskning" in sv and "Tolkade uppgifter" in sv
    for html in (en, sv):  # the code is only an attribute, never the text shown
        assert ">sender_unauthenticated" not in html
    # So is the reason DKIM gave: the unsigned test mail says so in words.
    assert "the mail has no DKIM signature" in en and "mejlet saknar DKIM-signatur" in sv
    findings = [html.split('id="findings"', 1)[1].split("</ul>", 1)[0] for html in (en, sv)]
    assert all("no_signature" not in f for f in findings)  # the audit keeps the code


async def test_the_preview_counts_and_samples_what_would_be_erased_and_changes_nothing(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    factory: sessionmaker[Session],
) -> None:
    with factory() as session:
        before = fingerprint(session, "nobody")
        r = decide.find(session, erase_alice)
        counts = run.preview(session, config, r)["alice@example.com"]
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    html = await (await client.get(f"/requests/{erase_alice}?lang=en")).text()
    preview = html.split('id="preview"', 1)[1].split("</section>\n</div>", 1)[0]
    assert "alice@example.com" in preview
    for channel, items in counts.items():
        label = {"mail": "Email"}.get(channel, channel.capitalize())
        sentence = i18n.erase_sentence("en", items, "future")
        if sentence:
            assert f"<li><strong>{label}:</strong> {sentence}.</li>" in preview
        assert " 0 " not in sentence  # no zero lines
    assert "1 conversation will be deleted with all its messages" in preview
    assert preview.count("<tr>") >= 3  # sample items, a few per channel
    with factory() as session:
        assert fingerprint(session, "nobody") == before


async def test_attachments_are_listed_and_never_opened(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, world: None
) -> None:
    msg = email.message_from_bytes(
        request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    msg.add_attachment(b"<script>alert(4)</script>SECRET-CONTENT", maintype="text",
                       subtype="html", filename="evil<b>.html")
    drop(config.path("var/inbox"), msg.as_bytes(), "attached")
    run_all(worker_for(config, engine))
    reference = _reference_in(engine, NEEDS_REVIEW)
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    html = await (await client.get(f"/requests/{reference}")).text()
    assert "evil&lt;b&gt;.html (text/html, " in html
    assert "SECRET-CONTENT" not in html and "alert(4)" not in html


# -- correct and re-check ---------------------------------------------------------------


async def test_correcting_a_subject_rechecks_and_keeps_the_original_parse_in_the_audit(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    factory: sessionmaker[Session],
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    response = await client.post(f"{page}/correct", data={
        "csrf": await _token(client, page), "subjects": "Bertil@Example.org\n",
        "kinds": "erase", "channels": ["forum", "chat"]})
    html = await response.text()
    assert response.status == 200 and 'id="subjects">bertil@example.org<' in html
    with factory() as session:
        r = decide.find(session, erase_alice)
        assert [s.email for s in r.subjects] == ["bertil@example.org"]
        assert r.channel_kinds == ["forum", "chat"] and r.state == NEEDS_REVIEW
        events = session.scalars(select(Event).where(Event.request_id == r.id)).all()
    # Subjects are named by their request_subjects row (records/redact.py), never in clear.
    parsed = next(e for e in events if e.action == "parsed")
    (alice,) = parsed.detail["subjects"]
    assert alice.startswith("subject#") and alice != f"subject#{r.subjects[0].id}"
    corrected = next(e for e in events if e.action == "corrected")
    assert corrected.actor == "anna@kundo.se"
    assert corrected.detail["before"]["subjects"] == ["subject#removed"]
    assert corrected.detail["after"] == {"subjects": [f"subject#{r.subjects[0].id}"],
                                         "kinds": ["erase"], "channels": ["forum", "chat"]}
    assert any(e.action == "rechecked" and e.actor == "anna@kundo.se" for e in events)
    assert "bertil@example.org" in html.split('id="preview"', 1)[1]


async def test_a_bad_correction_changes_nothing_and_says_why(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    factory: sessionmaker[Session],
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    token = await _token(client, page)
    before = _events(engine)
    for data, message in (
        ({"subjects": "not-an-address", "kinds": "erase"}, "is not a valid email address"),
        ({"subjects": "a@b.se", "kinds": "destroy"}, "Unknown kind or channel"),
    ):
        html = await (await client.post(f"{page}/correct", data={"csrf": token, **data})).text()
        assert message in html
    assert _events(engine) == before
    with factory() as session:
        assert [s.email for s in decide.find(session, erase_alice).subjects] == [
            "alice@example.com"]


async def test_a_correction_that_fails_the_checks_cannot_be_approved(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "adam@kundo.se")
    page = f"/requests/{erase_alice}"
    token = await _token(client, page)
    html = await (await client.post(f"{page}/correct", data={
        "csrf": token, "subjects": "", "kinds": "erase", "channels": "forum"})).text()
    assert "No data subject&#39;s email address was found." in html
    html = await (await client.post(f"{page}/approve", data={"csrf": token})).text()
    assert "must be corrected (or it must be rejected)" in html
    assert _reference_in(engine, NEEDS_REVIEW) == erase_alice
    await client.post(f"{page}/recheck", data={"csrf": token})
    assert _events(engine)[-1] == ("adam@kundo.se", "rechecked")


# -- deadlines ------------------------------------------------------------------------


async def test_extending_the_deadline_tells_the_editor_and_stops_at_three_months(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    factory: sessionmaker[Session],
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    token = await _token(client, page)
    for data, message in (({"months": "1", "reason": " "}, "Give a reason."),
                          ({"months": "3", "reason": "x"}, "at most two months"),
                          ({"months": "many", "reason": "x"}, "at most two months")):
        html = await (await client.post(f"{page}/extend", data={"csrf": token, **data})).text()
        assert message in html
    html = await (await client.post(f"{page}/extend", data={
        "csrf": token, "months": "2", "reason": "Många kanaler att gå igenom."})).text()
    with factory() as session:
        r = decide.find(session, erase_alice)
        assert r.deadline_extended_until == add_months(r.received_at, 3)
        assert r.deadline_extension_reason == "Många kanaler att gå igenom."
        reply = session.scalars(select(OutboundMail).where(
            OutboundMail.purpose == "deadline_extended")).one()
    assert f'id="due">{r.deadline_extended_until:%Y-%m-%d}' in html
    assert reply.to_addr == "eva@cykelbolaget.se"
    subject, _, body = _body(reply.raw)
    assert "Vi behöver mer tid" in subject  # the request was in Swedish, so is the reply
    assert "Skäl: Många kanaler att gå igenom." in body
    assert f"Vi svarar nu senast {r.deadline_extended_until:%Y-%m-%d}" in body
    assert ("anna@kundo.se", "deadline_extended") in _events(engine)
    html = await (await client.post(f"{page}/extend", data={
        "csrf": token, "months": "1", "reason": "Mer tid"})).text()
    assert "already that long" in html  # two months counted from the original due date
    queue = await (await client.get("/?q=" + erase_alice)).text()
    assert f"{r.deadline_extended_until:%Y-%m-%d} (extended)" in queue


async def test_an_extension_after_the_original_deadline_is_refused(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=32)
    monkeypatch.setattr(decide, "utcnow", lambda: late)
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    html = await (await client.post(f"{page}/extend", data={
        "csrf": await _token(client, page), "months": "1", "reason": "Sent"})).text()
    assert "The original deadline has passed" in html


# -- replies and exports ------------------------------------------------------------------


async def test_resend_queues_the_same_reply_under_a_new_message_id(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    factory: sessionmaker[Session],
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    page = f"/requests/{erase_alice}"
    with factory() as session:
        receipt = session.scalars(select(OutboundMail)).one()
    assert receipt.state == "sent"  # run_all delivered it to the outbox folder
    token = await _token(client, page)
    html = await (await client.post(f"{page}/replies/{receipt.id}/resend",
                                    data={"csrf": token})).text()
    with factory() as session:
        copy = session.scalars(select(OutboundMail).where(OutboundMail.id != receipt.id)).one()
    assert copy.state == "queued" and copy.purpose == "receipt"
    assert copy.message_id != receipt.message_id and copy.message_id.strip("<>") in html
    assert _body(copy.raw) == _body(receipt.raw) and copy.to_addr == receipt.to_addr
    assert ("anna@kundo.se", "reply_resent") in _events(engine)
    again = await client.post(f"{page}/replies/{copy.id}/resend", data={"csrf": token})
    assert "already waiting to be sent" in await again.text()
    missing = await client.post(f"{page}/replies/999999/resend", data={"csrf": token})
    assert "does not belong to this request" in await missing.text()


def _body(raw: bytes) -> tuple[str, str, str]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body()
    assert body is not None
    return str(msg["Subject"]), str(msg["In-Reply-To"]), str(body.get_content())


@pytest.fixture
def exported(world: None, config: Config, engine: Engine, factory: sessionmaker[Session]) -> str:
    """An export for bertil, run and kept; its request's reference."""
    drop(config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", EXPORT_BERTIL), "export-bertil")
    run_all(worker_for(config, engine))
    with factory.begin() as session:
        r = session.scalars(select(Request)).one()
        decide.approve(session, config, r, decide.Actor("adam@kundo.se", True))
    run_all(worker_for(config, engine))
    return _reference_in(engine, "done")


async def test_an_agent_downloads_the_export_while_it_is_kept_and_no_one_else_can(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, exported: str,
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with factory() as session:
        export = session.scalars(select(Export)).one()
    url = f"/requests/{exported}/exports/{export.id}"
    stranger = await _client(aiohttp_client, config, engine)
    response = await stranger.get(url, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert b"PK" not in await response.read()
    await _sign_in(stranger, "nobody@kundo.se")  # a wrong sign-in is no agent either
    assert (await stranger.get(url, allow_redirects=False)).status == 303

    # policy.export_download = "admins" (the default): a plain agent is not offered it.
    agent = await _client(aiohttp_client, config, engine)
    await _sign_in(agent, "anna@kundo.se")
    page = await (await agent.get(f"/requests/{exported}")).text()
    assert f'href="{url}"' not in page and "only admins may download" in page
    assert (await agent.get(url)).status == 403
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "adam@kundo.se")
    page = await (await client.get(f"/requests/{exported}")).text()
    assert f'href="{url}"' in page
    response = await client.get(url)
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    assert await response.read() == Path(export.path).read_bytes()
    assert export.filename in response.headers["Content-Disposition"]
    assert ("adam@kundo.se", "export_downloaded") in _events(engine)
    assert ("anna@kundo.se", "export_downloaded") not in _events(engine)
    assert ("anna@kundo.se", "export_download_refused") in _events(engine)  # audited too
    trail = await (await client.get(f"/requests/{exported}")).text()
    assert "A download of the export was refused" in trail
    assert "Reason: only admins may download" in trail
    agents_may = dataclasses.replace(
        config, policy=dataclasses.replace(config.policy, export_download="agents"))
    anna = await _client(aiohttp_client, agents_may, engine)
    await _sign_in(anna, "anna@kundo.se")
    assert (await anna.get(url)).status == 200
    assert ("anna@kundo.se", "export_downloaded") in _events(engine)
    assert (await client.get(f"/requests/{exported}/exports/999999")).status == 404
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=config.export.link_ttl_hours + 1)
    monkeypatch.setattr(decide, "utcnow", lambda: later)
    assert (await client.get(url)).status == 410


async def test_an_export_of_one_request_is_not_served_under_another(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, exported: str,
    factory: sessionmaker[Session],
) -> None:
    drop(config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase-alice")
    run_all(worker_for(config, engine))
    other = _reference_in(engine, NEEDS_REVIEW)
    with factory() as session:
        export = session.scalars(select(Export)).one()
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    assert (await client.get(f"/requests/{other}/exports/{export.id}")).status == 404


# -- queue, overview, language ------------------------------------------------------------


async def test_the_queue_pages_through_requests(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, world: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kundo_gdpr.web import views

    inbox = config.path("var/inbox")
    for n, body in enumerate((ERASE_ALICE, EXPORT_BERTIL, ERASE_ALICE.replace("alice", "carl"))):
        drop(inbox, request_mail("Eva Ek <eva@cykelbolaget.se>", body), f"m{n}")
    run_all(worker_for(config, engine))
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    first = await (await client.get("/?state=needs_review")).text()
    second = await (await client.get("/?state=needs_review&page=2")).text()
    refs = re.compile(r">(GDPR-\d{4}-\d{5})</a>")
    assert len(refs.findall(first)) == 2 and len(refs.findall(second)) == 1
    assert not set(refs.findall(first)) & set(refs.findall(second))
    assert "Page 1 / 2" in first and 'rel="next"' in first and 'rel="prev"' in second
    row = first.split("<tr data-state", 2)[1]
    for shown in ("Cykelbolaget", "eva@cykelbolaget.se", "needs review"):
        assert shown in row


async def test_the_overview_counts_states_and_draws_both_charts_in_svg(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, exported: str,
    erase_alice: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await _client(aiohttp_client, config, engine)
    await _sign_in(client, "anna@kundo.se")
    response = await client.get("/overview?lang=en")
    html = await response.text()
    counts = html.split('id="counts"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"<th>done</th><td><a [^>]*>1</a>", counts)
    assert re.search(r"<th>needs review</th><td><a [^>]*>1</a>", counts)
    assert re.search(r'id="overdue"><a [^>]*>0</a>', counts)
    assert html.count("<svg") == 2 and html.count('class="bar"') >= 2
    assert "<script" not in html and "script-src 'none'" in response.headers[
        "Content-Security-Policy"]
    weeks = html.split('id="weeks"', 1)[1]
    assert weeks.count("<tr>") == 13  # a header and twelve weeks
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    monkeypatch.setattr(queries, "utcnow", lambda: later)
    sv = await (await client.get("/overview?lang=sv")).text()
    assert re.search(r'id="overdue"><a [^>]*>1</a>', sv) and "Begäranden per vecka" in sv


def test_the_median_is_per_week_of_completion() -> None:
    from kundo_gdpr.web.chart import bars

    chart = bars(["a", "b", "c"], [2, None, 4.5], decimals=1)
    assert [b.value for b in chart.bars] == ["2.0", "", "4.5"]
    assert chart.bars[1].height == 0 and chart.bars[2].height > chart.bars[0].height


@pytest.mark.parametrize("path", ["/", "/overview", "/requests/{ref}", "/login"])
async def test_every_page_offers_the_language_switch(
    aiohttp_client: MakeClient, config: Config, engine: Engine, agents: None, erase_alice: str,
    path: str,
) -> None:
    client = await _client(aiohttp_client, config, engine)
    if path != "/login":
        await _sign_in(client, "anna@kundo.se")
    url = path.format(ref=erase_alice)
    sv = await (await client.get(url, headers={"Accept-Language": "sv-SE"})).text()
    assert '<html lang="sv">' in sv and 'href="?lang=en"' in sv
    en = await (await client.get(url + "?lang=en")).text()
    assert '<html lang="en">' in en and 'href="?lang=sv"' in en
