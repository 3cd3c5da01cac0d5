"""The agents' actions as functions (kundo_gdpr.stages.decide), the way the CLI would call them."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.models import Event, OutboundMail, Request
from kundo_gdpr.models.queue import APPROVED, NEEDS_REVIEW
from kundo_gdpr.stages import decide
from kundo_gdpr.stages.decide import Actor, ReviewError
from kundo_gdpr.stages.parse import add_months
from tests.helpers import drop, request_mail
from tests.test_pipeline import ERASE_ALICE, EXPORT_BERTIL, run_all, worker_for

ANNA = Actor("anna@kundo.se")
ADAM = Actor("adam@kundo.se", is_admin=True)
UTC = dt.UTC


@pytest.fixture
def waiting(world: None, config: Config, engine: Engine) -> str:
    drop(config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase-alice")
    run_all(worker_for(config, engine))
    with Session(engine) as session:
        ref = session.scalar(select(Request.reference).where(Request.state == NEEDS_REVIEW))
    assert ref
    return ref


@pytest.mark.parametrize("received,steps,expected", [
    # months counted from receipt, clamped to the month's end, never past receipt + 3
    (dt.datetime(2026, 1, 31, 9, tzinfo=UTC), [1, 2], ["2026-03-31", "2026-04-30"]),
    (dt.datetime(2026, 11, 30, 9, tzinfo=UTC), [2], ["2027-02-28"]),
    (dt.datetime(2028, 12, 31, 9, tzinfo=UTC), [1, 2], ["2029-02-28", "2029-03-31"]),
])
def test_an_extension_counts_from_receipt_and_ends_at_three_months(
    waiting: str, config: Config, factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch, received: dt.datetime, steps: list[int],
    expected: list[str],
) -> None:
    monkeypatch.setattr(decide, "utcnow", lambda: received + dt.timedelta(days=1))
    with factory.begin() as session:
        r = decide.find(session, waiting)
        r.received_at = received
        r.due_at = add_months(received, 1)
    for months, date in zip(steps, expected, strict=True):
        with factory.begin() as session:
            until = decide.extend_deadline(session, config, decide.find(session, waiting),
                                           ANNA, months, "Stor mängd data")
        assert f"{until:%Y-%m-%d}" == date
    with factory.begin() as session, pytest.raises(ReviewError) as refused:
        decide.extend_deadline(session, config, decide.find(session, waiting), ANNA, 2, "igen")
    assert refused.value.code == "extension_not_later"
    with factory() as session:
        replies = session.scalars(select(OutboundMail).where(
            OutboundMail.purpose == "deadline_extended")).all()
    assert len(replies) == len(steps)


def test_corrections_are_refused_once_a_request_is_decided(
    waiting: str, config: Config, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as session:
        decide.approve(session, config, decide.find(session, waiting), ADAM)
    fix = decide.parse_correction("bertil@example.org", ["erase"], ["forum"])
    with factory.begin() as session, pytest.raises(ReviewError) as refused:
        decide.correct(session, config, decide.find(session, waiting), ANNA, fix)
    assert refused.value.code == "state"
    with factory() as session:
        r = decide.find(session, waiting)
        assert r.state == APPROVED and [s.email for s in r.subjects] == ["alice@example.com"]


def test_a_correction_dedupes_and_lowercases_addresses(
    waiting: str, config: Config, factory: sessionmaker[Session]
) -> None:
    fix = decide.parse_correction("Bertil@Example.org, bertil@example.org;\n alice@example.com",
                                  ["erase", "export"], ["chat"])
    assert fix.subjects == ("bertil@example.org", "alice@example.com")
    with factory.begin() as session:
        decide.correct(session, config, decide.find(session, waiting), ANNA, fix)
    with factory() as session:
        r = decide.find(session, waiting)
        assert [s.email for s in r.subjects] == ["bertil@example.org", "alice@example.com"]
        assert r.kinds == ["erase", "export"] and r.channel_kinds == ["chat"]


def test_erasure_approval_needs_an_admin_when_the_policy_says_so(
    waiting: str, config: Config, factory: sessionmaker[Session]
) -> None:
    import dataclasses

    strict = dataclasses.replace(
        config, policy=dataclasses.replace(config.policy, erase_needs_admin=True))
    with factory.begin() as session, pytest.raises(ReviewError) as refused:
        decide.approve(session, strict, decide.find(session, waiting), ANNA)
    assert refused.value.code == "admin_only"
    with factory.begin() as session:
        decide.approve(session, strict, decide.find(session, waiting), ADAM)
        assert decide.find(session, waiting).decided_by == "adam@kundo.se"


def test_a_resent_done_reply_keeps_its_attachment_and_threading(
    world: None, config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    drop(config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", EXPORT_BERTIL), "export-bertil")
    run_all(worker_for(config, engine))
    with factory.begin() as session:
        r = session.scalars(select(Request)).one()
        decide.approve(session, config, r, ANNA)
    run_all(worker_for(config, engine))
    with factory.begin() as session:
        r = session.scalars(select(Request)).one()
        done = session.scalars(select(OutboundMail).where(OutboundMail.purpose == "done")).one()
        copy = decide.resend(session, config, r, ANNA, done.id)
        original, again = _mail(done.raw), _mail(copy.raw)
    assert again["Message-ID"] != original["Message-ID"]
    for header in ("Subject", "To", "In-Reply-To", "References"):
        assert again[header] == original[header]
    attached = [(a.get_filename(), a.get_content()) for a in again.iter_attachments()]
    assert attached == [(a.get_filename(), a.get_content()) for a in original.iter_attachments()]
    assert attached and attached[0][0].startswith(r.reference or "?")


def _mail(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.mark.parametrize("state", ["failed", "held"])
def test_a_reply_that_never_left_is_requeued_under_its_own_message_id(
    waiting: str, config: Config, factory: sessionmaker[Session], state: str
) -> None:
    with factory.begin() as session:
        receipt = session.scalars(select(OutboundMail)).one()
        receipt.state, receipt.last_error = state, "550 mailbox unavailable"
    with factory.begin() as session:
        again = decide.resend(session, config, decide.find(session, waiting), ANNA, receipt.id)
        assert again.id == receipt.id
    with factory() as session:
        rows = session.scalars(select(OutboundMail)).all()
        assert len(rows) == 1 and rows[0].state == "queued"
        assert rows[0].message_id == receipt.message_id and rows[0].raw == receipt.raw
        last = session.scalars(select(Event).order_by(Event.id.desc())).first()
        assert last is not None and (last.actor, last.action) == ("anna@kundo.se",
                                                                  "reply_released")
