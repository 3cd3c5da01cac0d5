"""The audit trail: every step of a request is an event with time and actor,
`requests show` prints them, and nothing can change or delete one."""

from __future__ import annotations

import datetime as dt
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit, cli
from kundo_gdpr.config import Config
from kundo_gdpr.models import Event, OutboundMail, Request, utcnow
from kundo_gdpr.stages import check, decide, parse
from tests.conftest import make_config
from tests.helpers import SV_ASSERTION, drop, request_mail
from tests.test_pipeline import run_all, worker_for

ERASE_ALICE = (
    "Hej!\n\nRadera alice@example.com i forum, e-post och chatt.\n\n"
    f"{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
)
AGENT = "anna@kundo.se"


@pytest.fixture
def review_config(tmp_path: Path, db_url: str) -> Config:
    # Unsigned mail, agents decide; tests/test_auth.py covers authentication.
    return make_config(tmp_path, db_url, auth={"require": False})


def _trail(factory: sessionmaker[Session]) -> list[tuple[str, str]]:
    with factory() as session:
        request = session.scalars(select(Request)).one()
        events = session.scalars(select(Event).where(
            (Event.request_id == request.id) | (Event.inbound_mail_id == request.inbound_mail_id)
        ).order_by(Event.id))
        return [(e.action, e.actor) for e in events]


def _detail(factory: sessionmaker[Session], action: str) -> list[dict[str, object]]:
    with factory() as session:
        return [e.detail for e in session.scalars(
            select(Event).where(Event.action == action).order_by(Event.id))]


@pytest.fixture
def carried_out(world: None, review_config: Config, engine: Engine,
                factory: sessionmaker[Session]) -> str:
    """Eva's erase: received, approved by an agent, run, every reply delivered."""
    drop(review_config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase-alice")
    worker = worker_for(review_config, engine)
    run_all(worker)
    with factory.begin() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "needs_review"
        decide.mark_approved(session, request, AGENT)
        reference = request.reference
    run_all(worker)
    assert reference
    return reference


def test_a_request_from_receipt_to_delivered_reply_is_in_the_trail_in_order(
    carried_out: str, factory: sessionmaker[Session],
) -> None:
    assert _trail(factory) == [
        ("mail_stored", "system"),
        ("parsed", "system"),
        ("checked", "system"),
        ("reply_queued", "system"),  # the receipt
        ("reply_sent", "system"),
        ("approved", AGENT),
        ("run_started", "system"),
        ("done", "system"),
        ("reply_queued", "system"),  # the done reply
        ("reply_sent", "system"),
    ]
    queued = _detail(factory, "reply_queued")
    assert [d["purpose"] for d in queued] == ["receipt", "done"]
    assert {d["to"] for d in queued} == {"eva@cykelbolaget.se"}
    (checked,) = _detail(factory, "checked")
    assert checked["state"] == "needs_review"
    assert isinstance(checked["findings"], list)
    with factory() as session:
        times = [e.at for e in session.scalars(select(Event).order_by(Event.id))]
    assert all(t.tzinfo is not None for t in times) and times == sorted(times)


def test_requests_show_prints_the_trail_with_actors(
    carried_out: str, review_config: Config, tmp_path: Path,
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[database]\nurl = "{review_config.database.url}"\n', encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(["--config", str(config_file), "requests", "show", carried_out])
    assert status == 0
    trail = out.getvalue().split("audit trail:", 1)[1].splitlines()
    actions = [line.split()[3] for line in trail if line.strip()]
    assert actions == ["mail_stored", "parsed", "checked", "reply_queued", "reply_sent",
                       "approved", "run_started", "done", "reply_queued", "reply_sent"]
    assert any(AGENT in line and "approved" in line for line in trail)


def test_a_failed_delivery_attempt_and_the_retry_are_both_events(
    world: None, review_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    drop(review_config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase-alice")
    worker = worker_for(review_config, engine)
    worker.fetch_once()
    # The stages up to the receipt, called directly: the worker would deliver it at once.
    assert parse.parse_one(factory, review_config)
    assert check.check_one(factory, review_config)
    with factory() as session:
        message_id = session.scalars(select(OutboundMail.message_id)).one()
    # A directory where the reply's file must go: the write fails, for root too.
    blocker = review_config.path("var/outbox") / (message_id.strip("<>") + ".eml")
    blocker.mkdir(parents=True)
    worker.deliver_once()
    (retry,) = _detail(factory, "reply_retry")
    assert retry["attempt"] == 1 and "cannot write" in str(retry["error"])
    blocker.rmdir()
    with factory.begin() as session:  # the backoff has passed
        session.execute(update(OutboundMail).values(
            next_attempt_at=utcnow() - dt.timedelta(seconds=1)))
    worker.deliver_once()
    assert [a for a, _ in _trail(factory)][-2:] == ["reply_retry", "reply_sent"]


def test_the_orm_refuses_to_change_or_delete_an_event(
    carried_out: str, factory: sessionmaker[Session],
) -> None:
    with pytest.raises(audit.AppendOnlyError), factory.begin() as session:
        first = session.scalars(select(Event).order_by(Event.id)).first()
        assert first is not None
        first.actor = "someone-else"
    with pytest.raises(audit.AppendOnlyError), factory.begin() as session:
        first = session.scalars(select(Event).order_by(Event.id)).first()
        session.delete(first)
    with pytest.raises(audit.AppendOnlyError), factory.begin() as session:
        session.execute(update(Event).values(actor="x"))
    with pytest.raises(audit.AppendOnlyError), factory.begin() as session:
        session.execute(delete(Event))
    assert ("approved", AGENT) in _trail(factory)


def test_the_database_refuses_update_and_delete_on_events_even_in_raw_sql(
    carried_out: str, engine: Engine, factory: sessionmaker[Session],
) -> None:
    before = _trail(factory)
    for statement in ("UPDATE events SET actor = 'mallory'", "DELETE FROM events"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert _trail(factory) == before
    with engine.begin() as conn:  # inserting stays possible
        conn.execute(text(
            "INSERT INTO events (at, actor, action, detail) "
            "VALUES (CURRENT_TIMESTAMP, 'system', 'note', '{}')"))
