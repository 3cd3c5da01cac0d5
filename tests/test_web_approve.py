"""The irreversible moment over HTTP: a confirmation page that says what will happen,
the typed address for large erasures, four eyes, export wording, and a message
after every action."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kundo_gdpr.config import Config
from kundo_gdpr.models import Event, FirstApproval, Request
from kundo_gdpr.models.queue import APPROVED, NEEDS_REVIEW
from kundo_gdpr.web import make_app
from tests.helpers import drop, request_mail
from tests.test_pipeline import EXPORT_BERTIL, run_all, worker_for
from tests.test_web import (  # noqa: F401  (fixtures)
    Client,
    MakeClient,
    _csrf,
    _reference_in,
    _sign_in,
    _token,
    agents,
    erase_alice,
)


@pytest.fixture
def waiting(erase_alice: str) -> str:  # noqa: F811
    """alice's erase request, waiting for review."""
    return erase_alice

pytestmark = pytest.mark.usefixtures("agents")


def _with_policy(config: Config, **policy: object) -> Config:
    return dataclasses.replace(config, policy=dataclasses.replace(config.policy, **policy))


async def _agent(aiohttp_client: MakeClient, config: Config, engine: Engine,
                 email: str) -> Client:
    client = await aiohttp_client(make_app(config, engine))
    await _sign_in(client, email)
    return client


async def _confirm(client: Client, reference: str, **extra: str) -> tuple[int, str, str]:
    page = f"/requests/{reference}/approve"
    asked = await client.get(page)
    html = await asked.text()
    response = await client.post(page, data={"csrf": _csrf(html), "confirm": "yes", **extra})
    return response.status, str(response.url), await response.text()


@pytest.fixture
def export_bertil(world: None, config: Config, engine: Engine) -> str:
    drop(config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", EXPORT_BERTIL), "export-bertil")
    run_all(worker_for(config, engine))
    return _reference_in(engine, NEEDS_REVIEW)


async def test_an_export_request_speaks_of_exporting_everywhere(
    aiohttp_client: MakeClient, config: Config, engine: Engine, export_bertil: str
) -> None:
    anna = await _agent(aiohttp_client, config, engine, "anna@kundo.se")
    page = await (await anna.get(f"/requests/{export_bertil}")).text()
    preview = page.split('id="preview"', 1)[1]
    assert "What the export would hold" in page and "The export holds:" in preview
    for erase_word in ("deleted", "anonymised", "replaced", "removed"):
        assert erase_word not in preview.split("<table", 1)[0], erase_word
    assert re.search(r"\d+ email messages?", preview)
    # A plain agent may approve an export (erase_needs_admin is about erasure).
    confirm = await (await anna.get(f"/requests/{export_bertil}/approve")).text()
    assert "Confirm export" in confirm and "Nothing is erased" in confirm
    assert "cannot be undone" not in confirm and "Confirm erasure" not in confirm
    _status, url, html = await _confirm(anna, export_bertil)
    assert "done=approved" in url and "The export is now made in the background" in html
    run_all(worker_for(config, engine))
    done = await (await anna.get(f"/requests/{export_bertil}")).text()
    result = done.split('id="result"', 1)[1].split("</section>", 1)[0]
    assert "The export held" in result and "deleted" not in result


async def test_posting_approve_without_the_confirmation_only_shows_the_confirmation(
    aiohttp_client: MakeClient, config: Config, engine: Engine, waiting: str
) -> None:
    adam = await _agent(aiohttp_client, config, engine, "adam@kundo.se")
    page = f"/requests/{waiting}"
    response = await adam.post(f"{page}/approve", data={"csrf": await _token(adam, page)})
    assert str(response.url).endswith("/approve") and "Confirm erasure" in await response.text()
    assert _reference_in(engine, NEEDS_REVIEW) == waiting


async def test_a_large_erasure_needs_the_subjects_address_typed(
    aiohttp_client: MakeClient, config: Config, engine: Engine, waiting: str
) -> None:
    strict = _with_policy(config, review_erase_above=2)
    adam = await _agent(aiohttp_client, strict, engine, "adam@kundo.se")
    confirm = await (await adam.get(f"/requests/{waiting}/approve")).text()
    assert 'name="typed"' in confirm and "(more than 2)" in confirm
    status, _url, html = await _confirm(adam, waiting, typed="alice@example.se")
    assert status == 400 and "alice@example.se" in html  # says what was typed
    assert 'value="alice@example.se"' in html  # and keeps it
    assert _reference_in(engine, NEEDS_REVIEW) == waiting
    status, url, html = await _confirm(adam, waiting, typed=" Alice@Example.com ")
    assert "done=approved" in url
    assert _reference_in(engine, APPROVED) == waiting
    # Below the limit nothing has to be typed.
    assert 'name="typed"' not in await (await adam.get(
        f"/requests/{waiting}/approve")).text()


async def test_with_four_eyes_an_erasure_runs_only_once_a_second_agent_confirms(
    aiohttp_client: MakeClient, config: Config, engine: Engine, waiting: str
) -> None:
    four_eyes = _with_policy(config, erase_needs_second_agent=True, erase_needs_admin=False)
    anna = await _agent(aiohttp_client, four_eyes, engine, "anna@kundo.se")
    status, url, html = await _confirm(anna, waiting)
    assert "done=approved_first" in url and "another agent has confirmed it" in html
    assert _reference_in(engine, NEEDS_REVIEW) == waiting
    # The same agent is not offered a second approval, and is refused one.
    assert 'id="approve"' not in html and "another agent must confirm" in html
    status, _url, _html = await _confirm(anna, waiting)
    assert status == 403 and _reference_in(engine, NEEDS_REVIEW) == waiting
    adam = await _agent(aiohttp_client, four_eyes, engine, "adam@kundo.se")
    page = await (await adam.get(f"/requests/{waiting}")).text()
    assert "anna@kundo.se has approved" in page
    status, url, html = await _confirm(adam, waiting)
    assert "done=approved" in url and _reference_in(engine, APPROVED) == waiting
    with Session(engine) as session:
        assert session.scalars(select(FirstApproval)).all() == []
        actions = [(e.actor, e.action) for e in session.scalars(
            select(Event).where(Event.request_id.is_not(None)).order_by(Event.id))]
    assert ("anna@kundo.se", "approval_first") in actions
    assert ("adam@kundo.se", "approval_second") in actions
    assert ("adam@kundo.se", "approved") in actions


async def test_a_correction_withdraws_a_first_approval(
    aiohttp_client: MakeClient, config: Config, engine: Engine, waiting: str
) -> None:
    four_eyes = _with_policy(config, erase_needs_second_agent=True)
    adam = await _agent(aiohttp_client, four_eyes, engine, "adam@kundo.se")
    await _confirm(adam, waiting)
    page = f"/requests/{waiting}"
    await adam.post(f"{page}/correct", data={"csrf": await _token(adam, page),
                                             "subjects": "bertil@example.org",
                                             "kinds": "erase", "channels": "forum"})
    with Session(engine) as session:
        assert session.scalars(select(FirstApproval)).all() == []


@pytest.mark.parametrize("action,data,message", [
    ("reject", {"reason": "Fel kund"}, "The editor (eva@cykelbolaget.se) gets a mail"),
    ("recheck", {}, "The checks ran again"),
    ("take", {}, "The request is yours now"),
    ("extend", {"months": "1", "reason": "Många ärenden"}, "The deadline is extended"),
])
async def test_every_action_says_what_happened_and_what_comes_next(
    aiohttp_client: MakeClient, config: Config, engine: Engine, waiting: str,
    action: str, data: dict[str, str], message: str,
) -> None:
    anna = await _agent(aiohttp_client, config, engine, "anna@kundo.se")
    page = f"/requests/{waiting}"
    response = await anna.post(f"{page}/{action}", data={"csrf": await _token(anna, page),
                                                         **data})
    html = await response.text()
    assert response.status == 200 and "done=" in str(response.url)
    flash = html.split('id="flash">', 1)[1].split("</p>", 1)[0]
    assert message in flash


async def test_a_bad_correction_keeps_what_was_typed_and_names_the_bad_value(
    aiohttp_client: MakeClient, config: Config, engine: Engine, waiting: str
) -> None:
    anna = await _agent(aiohttp_client, config, engine, "anna@kundo.se")
    page = f"/requests/{waiting}"
    typed = "bertil@example.org\nnot-an-address"
    response = await anna.post(f"{page}/correct", data={
        "csrf": await _token(anna, page), "subjects": typed, "kinds": "export",
        "channels": "chat"})
    html = await response.text()
    assert response.status == 400
    assert "“not-an-address” is not a valid email address" in html
    assert f">{typed}</textarea>" in html
    assert 'value="export" checked' in html and 'value="erase" checked' not in html
    assert 'value="chat" checked' in html and 'value="forum" checked' not in html


async def test_take_puts_the_request_under_mine(
    aiohttp_client: MakeClient, config: Config, engine: Engine, waiting: str
) -> None:
    anna = await _agent(aiohttp_client, config, engine, "anna@kundo.se")
    mine = await (await anna.get("/?view=mine")).text()
    assert waiting not in mine
    page = f"/requests/{waiting}"
    await anna.post(f"{page}/take", data={"csrf": await _token(anna, page)})
    assert waiting in await (await anna.get("/?view=mine")).text()
    adam = await _agent(aiohttp_client, config, engine, "adam@kundo.se")
    assert waiting not in await (await adam.get("/?view=mine")).text()
    with Session(engine) as session:
        assert session.scalar(select(Request.assignee)) == "anna@kundo.se"
