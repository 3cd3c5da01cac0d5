"""The driver isolates every failure: a row that makes a stage raise ends
`quarantined` or `failed` with its reason after `service.max_attempts`, and the
request behind it is still handled and answered in the same run.

One poison per stage the driver runs: the parser raising (parse), a hostile
header line that makes dkim raise and a check raising (check), an expiry
raising (expire_confirmations), the desk raising during the run (run), and a
transport raising what is not a TransportError (deliver).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.checks import CheckContext, Finding
from kundo_gdpr.checks.request import Assertion
from kundo_gdpr.cli.requests import cmd_requests_show
from kundo_gdpr.config import Config
from kundo_gdpr.desk.sql import SqlDesk
from kundo_gdpr.models import Confirmation, Event, InboundMail, OutboundMail, Request, utcnow
from kundo_gdpr.replies.transports import FolderTransport
from kundo_gdpr.stages import parse as parse_stage
from kundo_gdpr.stages import run, sweep
from kundo_gdpr.stages.driver import ATTEMPT_FAILED, Worker, make_source
from kundo_gdpr.web import queries
from tests.conftest import make_config
from tests.helpers import drop, request_mail
from tests.test_pipeline import ERASE_ALICE, EXPORT_BERTIL, auto_config, run_all, worker_for

__all__ = ["auto_config"]  # the fixture, used by name

EVA, OLLE = "eva@cykelbolaget.se", "olle@bokhandeln.se"


def hostile(raw: bytes) -> bytes:
    """A header line without a colon: Python's parser takes it, dkim.DKIM raises."""
    head, _, rest = raw.partition(b"\n")
    return head + b"\nX-Broken header line without a colon\n" + rest


def by_sender(factory: sessionmaker[Session]) -> dict[str, Request]:
    with factory() as session:
        return {r.sender or "": r for r in session.scalars(select(Request))}


def attempts(factory: sessionmaker[Session], request: Request) -> list[dict[str, Any]]:
    with factory() as session:
        return [e.detail for e in session.scalars(select(Event).where(
            Event.request_id == request.id, Event.action == ATTEMPT_FAILED).order_by(Event.id))]


def replies(factory: sessionmaker[Session], to: str) -> dict[str, str]:
    with factory() as session:
        rows = session.scalars(select(OutboundMail).where(OutboundMail.to_addr == to))
        return {m.purpose: m.state for m in rows}


def assert_answered(factory: sessionmaker[Session], request: Request, to: str) -> None:
    assert request.state == "done", request.state
    assert replies(factory, to) == {"receipt": "sent", "done": "sent"}


def assert_stopped(
    factory: sessionmaker[Session], request: Request, state: str, stage: str, error: str,
    capsys: pytest.CaptureFixture[str], config: Config,
) -> None:
    """Given up after exactly max_attempts, with the reason where agents look."""
    assert request.state == state
    tried = attempts(factory, request)
    assert [t["attempt"] for t in tried] == [1, 2, 3]
    assert {t["stage"] for t in tried} == {stage}
    assert all(error in t["error"] for t in tried)
    assert_visible(factory, request, stage, error, capsys, config)


def assert_visible(
    factory: sessionmaker[Session], request: Request, stage: str, error: str,
    capsys: pytest.CaptureFixture[str], config: Config,
) -> None:
    """The reason shows on the agents' queue and in `requests show`."""
    with factory() as session:  # the agents' queue
        rows, _ = queries.queue(session, queries.QueueQuery(view="all", state=request.state),
                                1, 50)
    (row,) = [r for r in rows if r["reference"] == request.reference]
    assert row["stopped"].startswith(f"{stage}: ") and error in row["stopped"]
    capsys.readouterr()
    args = argparse.Namespace(reference=request.reference)
    assert cmd_requests_show(args, config) == 0
    shown = capsys.readouterr().out
    assert f"stopped    {stage}: " in shown and error in shown


def test_a_hostile_header_is_quarantined_and_the_next_request_is_answered(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    inbox = auto_config.path("var/inbox")
    drop(inbox, hostile(request_mail(OLLE, EXPORT_BERTIL)), "1-poison")
    drop(inbox, request_mail(EVA, ERASE_ALICE), "2-good")
    run_all(worker_for(auto_config, engine))
    found = by_sender(factory)
    assert_stopped(factory, found[OLLE], "quarantined", "check", "MessageFormatError",
                   capsys, auto_config)
    assert_answered(factory, found[EVA], EVA)
    assert replies(factory, OLLE) == {}  # a quarantined mail is never answered


def test_a_check_that_raises_quarantines_only_its_request(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Assertion.check

    def check(self: Assertion, ctx: CheckContext) -> list[Finding]:
        if ctx.request.sender == OLLE:
            raise KeyError("a check's own bug")
        return real(self, ctx)

    monkeypatch.setattr(Assertion, "check", check)
    inbox = auto_config.path("var/inbox")
    drop(inbox, request_mail(OLLE, EXPORT_BERTIL), "1-poison")
    drop(inbox, request_mail(EVA, ERASE_ALICE), "2-good")
    run_all(worker_for(auto_config, engine))
    found = by_sender(factory)
    assert_stopped(factory, found[OLLE], "quarantined", "check", "KeyError", capsys, auto_config)
    assert_answered(factory, found[EVA], EVA)


class PickyTransport(FolderTransport):
    """The real folder transport, except that sending to one address raises what no
    transport should: not a TransportError."""

    def __init__(self, path: Path, refuse: str) -> None:
        super().__init__(path)
        self.refuse = refuse

    def send(self, sender: str, recipient: str, raw: bytes, message_id: str) -> None:
        if recipient == self.refuse:
            raise UnicodeEncodeError("ascii", recipient, 0, 1, "a transport bug")
        super().send(sender, recipient, raw, message_id)


def test_a_transport_raising_fails_that_reply_and_the_next_request_is_answered(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    inbox = auto_config.path("var/inbox")
    drop(inbox, request_mail(OLLE, EXPORT_BERTIL), "1-poison")
    drop(inbox, request_mail(EVA, ERASE_ALICE), "2-good")
    transport = PickyTransport(auto_config.path(auto_config.outbox.folder.path), OLLE)
    run_all(Worker(auto_config, engine, make_source(auto_config), transport))
    found = by_sender(factory)
    assert_answered(factory, found[EVA], EVA)
    # Olle's request itself went on; each of his replies failed after three attempts.
    assert found[OLLE].state == "done"
    assert replies(factory, OLLE) == {"receipt": "failed", "done": "failed"}
    with factory() as session:
        for row in session.scalars(select(OutboundMail).where(OutboundMail.to_addr == OLLE)):
            assert row.last_error and row.last_error.startswith("UnicodeEncodeError: ")
    tried = attempts(factory, found[OLLE])
    assert [t["attempt"] for t in tried] == [1, 2, 3, 1, 2, 3]
    assert {t["stage"] for t in tried} == {"deliver"}


def test_a_desk_error_during_the_run_fails_that_request_and_the_next_is_answered(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    real: Callable[..., Any] = SqlDesk.erase

    def erase(self: SqlDesk, subject: str, *args: Any, **kwargs: Any) -> Any:
        if subject == "alice@example.com":
            raise RuntimeError("the desk fell over")
        return real(self, subject, *args, **kwargs)

    monkeypatch.setattr(SqlDesk, "erase", erase)
    inbox = auto_config.path("var/inbox")
    drop(inbox, request_mail(EVA, ERASE_ALICE), "1-poison")
    drop(inbox, request_mail(OLLE, EXPORT_BERTIL), "2-good")
    run_all(worker_for(auto_config, engine))
    found = by_sender(factory)
    assert_stopped(factory, found[EVA], "failed", "run", "RuntimeError: the desk fell over",
                   capsys, auto_config)
    assert replies(factory, EVA) == {"receipt": "sent"}  # no done reply for a failed run
    assert_answered(factory, found[OLLE], OLLE)


def test_receipts_go_out_before_the_next_run_starts(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two requests checked in one pass: the second one's receipt is sent before
    the first one's run begins, not after both runs."""
    sent_before_run: list[set[str]] = []
    real: Callable[..., Any] = run.prepare_request

    def prepare(*args: Any, **kwargs: Any) -> Any:
        with factory() as session:
            sent_before_run.append(set(session.scalars(select(OutboundMail.to_addr).where(
                OutboundMail.state == "sent", OutboundMail.purpose == "receipt"))))
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "prepare_request", prepare)
    inbox = auto_config.path("var/inbox")
    drop(inbox, request_mail(EVA, ERASE_ALICE), "1")
    drop(inbox, request_mail(OLLE, EXPORT_BERTIL.replace("Please export", "Please erase")), "2")
    worker = worker_for(auto_config, engine)
    worker.fetch_once()
    worker.process_once()
    assert sent_before_run and sent_before_run[0] == {EVA, OLLE}


def test_a_database_outage_is_not_blamed_on_a_row(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import OperationalError

    from kundo_gdpr.stages import check

    drop(auto_config.path("var/inbox"), request_mail(EVA, ERASE_ALICE), "1")
    worker = worker_for(auto_config, engine)
    worker.fetch_once()

    def down(*args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(check, "check_request", down)
    for _ in range(4):
        with pytest.raises(OperationalError):
            worker.process_once()
    monkeypatch.undo()
    found = by_sender(factory)
    assert attempts(factory, found[EVA]) == []
    run_all(worker)
    assert_answered(factory, by_sender(factory)[EVA], EVA)


def test_a_mail_the_parser_raises_on_is_quarantined_and_the_next_request_is_answered(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = parse_stage.parse

    def parse(raw: bytes, *args: Any, **kwargs: Any) -> Any:
        if OLLE.encode() in raw:
            raise IndexError("a parser bug")
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(parse_stage, "parse", parse)
    inbox = auto_config.path("var/inbox")
    drop(inbox, request_mail(OLLE, EXPORT_BERTIL), "1-poison")
    drop(inbox, request_mail(EVA, ERASE_ALICE), "2-good")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        mail = session.scalars(select(InboundMail).order_by(InboundMail.id)).first()
        assert mail is not None and mail.error == "IndexError: a parser bug"
        tried = [e.detail for e in session.scalars(select(Event).where(
            Event.inbound_mail_id == mail.id, Event.action == ATTEMPT_FAILED).order_by(Event.id))]
        (poisoned,) = session.scalars(select(Request).where(Request.inbound_mail_id == mail.id))
    assert [(t["stage"], t["attempt"]) for t in tried] == [("parse", 1), ("parse", 2),
                                                            ("parse", 3)]
    assert poisoned.state == "quarantined"
    assert_visible(factory, poisoned, "parse", "IndexError: a parser bug", capsys, auto_config)
    assert_answered(factory, by_sender(factory)[EVA], EVA)


def test_an_expiry_that_raises_quarantines_that_request_and_the_next_expires_and_is_told(
    world: None, tmp_path: Path, db_url: str, engine: Engine, factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config(tmp_path, db_url, auth={"require": False},
                         policy={"auto_approve": True, "confirm_by_mail": True})
    inbox = config.path("var/inbox")
    drop(inbox, request_mail(EVA, ERASE_ALICE), "1-poison")
    drop(inbox, request_mail(OLLE, EXPORT_BERTIL), "2-good")
    worker = worker_for(config, engine)
    run_all(worker)
    assert {r.state for r in by_sender(factory).values()} == {"unconfirmed"}
    with factory.begin() as session:  # both editors let 72 hours pass
        session.execute(update(Confirmation).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    real = sweep.reply_context

    def context(session: Session, request: Request, **kwargs: Any) -> Any:
        if request.sender == EVA:
            raise LookupError("a template's context went missing")
        return real(session, request, **kwargs)

    monkeypatch.setattr(sweep, "reply_context", context)
    run_all(worker)
    found = by_sender(factory)
    assert_stopped(factory, found[EVA], "quarantined", "expire_confirmations", "LookupError",
                   capsys, config)
    assert found[OLLE].state == "expired"
    assert replies(factory, OLLE) == {"confirm_request": "sent", "confirm_expired": "sent"}
    assert replies(factory, EVA) == {"confirm_request": "sent"}
