"""Doubt is a finding: every doubtful reading stops auto-approval, and the agent
sees the words of the mail that caused it (checks/doubts.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.models import ChatSession, Event, Request
from kundo_gdpr.stages import decide as review
from kundo_gdpr.web import auth, make_app
from tests.conftest import make_config
from tests.helpers import EN_ASSERTION, SV_ASSERTION, drop, outbox_messages, request_mail
from tests.test_pipeline import run_all, worker_for

PASSWORD = "correct horse battery"


@pytest.fixture
def auto(tmp_path: Path, db_url: str) -> Config:
    # Unsigned mail from the world's editors; test_auth covers authentication.
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False})


def _run(config: Config, engine: Engine, body: str, sender: str = "eva@cykelbolaget.se") -> None:
    drop(config.path("var/inbox"), request_mail(sender, body), "m1")
    run_all(worker_for(config, engine))


def _request(factory: sessionmaker[Session]) -> Request:
    with factory() as session:
        request = session.scalars(select(Request)).one()
        session.expunge(request)
        return request


def _finding(request: Request, code: str) -> dict[str, Any]:
    (found,) = [f for f in request.findings if f["code"] == code]
    return found


def _alice_chats(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(ChatSession).where(
            ChatSession.visitor_email == "alice@example.com")) or 0


def test_an_export_that_says_do_not_delete_waits_for_an_agent_and_erases_nothing(
    world: None, auto: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    _run(auto, engine, "Hello,\n\nPlease export alice@example.com's chats. Don't delete "
                       f"anything yet.\n\n{EN_ASSERTION}\n\nBest regards\nEva\n")
    request = _request(factory)
    assert (request.state, request.kinds) == ("needs_review", ["export"])
    finding = _finding(request, "kind_doubt")
    assert finding["severity"] == "review" and finding["args"]["words"] == ["Don't delete"]
    assert _alice_chats(factory) == 2
    with factory() as session:  # the audit trail keeps the finding's code, not the words
        checked = session.scalars(select(Event.detail).where(Event.action == "checked")).one()
    assert "kind_doubt" in [f["code"] for f in checked["findings"]]
    assert "Don't delete" not in str(checked)


def test_a_copy_of_the_id_attached_is_no_export(
    world: None, auto: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    _run(auto, engine, "Hej!\n\nRadera alice@example.com:s chattar. En kopia av hennes "
                       f"legitimation bifogas.\n\n{SV_ASSERTION}\n\n/Eva\n")
    request = _request(factory)
    assert (request.state, request.kinds) == ("done", ["erase"])
    assert _alice_chats(factory) == 1  # Cykelbolaget's is gone, Bokhandeln's is not theirs
    (done,) = [m for m in outbox_messages(auto.path("var/outbox")) if "utförd" in m["Subject"]]
    assert [p.get_filename() for p in done.iter_attachments()] == ["proof.json"]


def test_both_kinds_in_one_mail_wait_for_an_agent(
    world: None, auto: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    _run(auto, engine, "Hej!\n\nExportera och radera alice@example.com:s chattar.\n\n"
                       f"{SV_ASSERTION}\n\nMvh Eva\n")
    request = _request(factory)
    assert request.state == "needs_review"
    assert _finding(request, "kind_doubt")["args"]["words"] == ["radera", "Exportera"]


@pytest.mark.parametrize(
    ("subject", "why"),
    [("olle@bokhandeln.se", "staff_editor"), ("anna@kundo.se", "staff_agent"),
     ("kalle@kundo.se", "staff_domain")],
)
def test_a_subject_who_is_staff_waits_for_an_agent(
    world: None, auto: Config, engine: Engine, factory: sessionmaker[Session],
    subject: str, why: str,
) -> None:
    with factory.begin() as session:
        auth.add_agent(session, "anna@kundo.se", PASSWORD)
    _run(auto, engine, f"Hej!\n\nRadera alice@example.com och {subject} ur chatten.\n\n"
                       f"{SV_ASSERTION}\n\nMvh Eva\n")
    request = _request(factory)
    assert request.state == "needs_review"
    finding = _finding(request, "subject_is_staff")
    assert finding["args"]["subject"] == subject and finding["args"]["why"] == [why]
    assert _alice_chats(factory) == 2


def test_a_role_address_named_as_the_customer_waits_for_an_agent_with_its_words(
    world: None, auto: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    _run(auto, engine, "Hej!\n\nRadera kunden info@bageriet.se ur chatten.\n\n"
                       f"{SV_ASSERTION}\n\nMvh Eva\n")
    finding = _finding(_request(factory), "subject_is_staff")
    assert finding["args"]["words"] == ["Radera kunden info@bageriet.se ur chatten."]


def test_an_erase_for_an_address_with_no_items_waits_for_an_agent(
    world: None, auto: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    _run(auto, engine, "Hej!\n\nRadera alice@exmaple.com ur chatten.\n\n"
                       f"{SV_ASSERTION}\n\nMvh Eva\n")
    request = _request(factory)
    assert request.state == "needs_review"
    assert _finding(request, "subject_not_found")["severity"] == "review"


def test_an_export_for_an_address_with_no_items_runs_and_says_nothing_was_found(
    world: None, auto: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    _run(auto, engine, "Hello,\n\nPlease export nobody@example.com's chats.\n\n"
                       f"{EN_ASSERTION}\n\nRegards\nEva\n")
    request = _request(factory)
    assert request.state == "done"
    assert _finding(request, "subject_not_found")["severity"] == "info"
    texts = [m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
             for m in outbox_messages(auto.path("var/outbox"))]
    assert any("No data was found for nobody@example.com." in t for t in texts)


@pytest.mark.parametrize(
    ("policy", "body"),
    [({"review_erase_above": 1}, "Radera alice@example.com ur chatten."),
     ({"review_subjects_above": 1}, "Radera alice@example.com och bertil@example.org ur chatten.")],
)
def test_a_large_erase_waits_for_an_admin(
    world: None, tmp_path: Path, db_url: str, engine: Engine,
    factory: sessionmaker[Session], policy: dict[str, int], body: str,
) -> None:
    config = make_config(tmp_path, db_url, policy={"auto_approve": True,
                                                   "erase_needs_admin": False, **policy},
                         auth={"require": False})
    _run(config, engine, f"Hej!\n\n{body}\n\n{SV_ASSERTION}\n\nMvh Eva\n")
    request = _request(factory)
    assert request.state == "needs_review"
    assert _finding(request, "large_erase")["severity"] == "review"
    with factory.begin() as session:
        row = review.find(session, request.reference or "")
        with pytest.raises(review.ReviewError) as refused:
            review.approve(session, config, row, review.Actor("anna@kundo.se"))
        assert refused.value.code == "admin_only"
        review.approve(session, config, row, review.Actor("adam@kundo.se", is_admin=True))
        assert row.state == "approved"


async def test_the_request_page_shows_each_finding_with_the_words_that_caused_it(
    aiohttp_client: Any, world: None, auto: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        auth.add_agent(session, "anna@kundo.se", PASSWORD)
    _run(auto, engine, "Hej!\n\nExportera alice@example.com:s chattar, radera inte något.\n\n"
                       f"{SV_ASSERTION}\n\nMvh Eva\n")
    reference = _request(factory).reference
    client: TestClient[Any, Any] = await aiohttp_client(make_app(auto, engine))
    login = await (await client.get("/login")).text()
    csrf = login.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    await client.post("/login", data={"csrf": csrf, "email": "anna@kundo.se",
                                      "password": PASSWORD})
    html = await (await client.get(f"/requests/{reference}")).text()
    assert 'data-code="kind_doubt"' in html
    assert "It is unclear what the mail asks for" in html
    assert '<q class="words">radera inte</q>' in html
