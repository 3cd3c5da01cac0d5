"""The hourly reply limit, and failed replies, as an agent sees them in the CLI.

Mail comes from a Maildir; replies go to the folder transport or, where an SMTP
answer matters, to a real aiosmtpd on loopback. Both databases.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from kundo_gdpr import db
from kundo_gdpr.cli import main
from kundo_gdpr.config import Config, from_dict
from kundo_gdpr.models import Event, OutboundMail, Request
from kundo_gdpr.replies import outbox
from kundo_gdpr.stages.driver import Worker, make_source, make_transport
from tests import servers
from tests.helpers import SV_ASSERTION, drop, request_mail
from tests.servers import SmtpServer
from tests.test_imap_smtp import write_toml

smtp_server = servers.smtp_server

EVA = "Eva Ek <eva@cykelbolaget.se>"
OLLE = "Olle <olle@bokhandeln.se>"


def erase_request(sender: str, subject: str, n: int) -> bytes:
    body = f"Hej!\n\nRadera allt om {subject} i forum, e-post och chatt.\n\n{SV_ASSERTION}\n"
    return request_mail(sender, body, message_id=f"<limit-{n}@example.se>")


def config_data(tmp_path: Path, db_url: str, **extra: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "service": {"max_replies_per_sender_per_hour": 3},
        "intake": {"maildir": {"path": str(tmp_path / "inbox")}},
        "outbox": {"folder": {"path": str(tmp_path / "outbox")}, "retry_base_seconds": 0.1},
        "policy": {"auto_approve": True},
        "auth": {"require": False},  # unsigned test mail; authenticity has its own tests
    }
    for section, values in extra.items():
        data[section] = {**data.get(section, {}), **values}
    return data


def setup(tmp_path: Path, db_url: str, **extra: dict[str, Any]) -> tuple[Config, str]:
    """A config object and the same config as a file, for the CLI."""
    data = config_data(tmp_path, db_url, **extra)
    path = tmp_path / "config.toml"
    write_toml(path, data)
    return from_dict(data, root=tmp_path), str(path)


def run(config: Config, engine: Engine) -> None:
    worker = Worker(config, engine, make_source(config), make_transport(config))
    while worker.run_once():
        pass


def replies(engine: Engine) -> list[OutboundMail]:
    with db.session_factory(engine)() as session:
        return list(session.scalars(select(OutboundMail).order_by(OutboundMail.id)))


def states(engine: Engine, to_addr: str) -> list[str]:
    return [r.state for r in replies(engine) if r.to_addr == to_addr]


def sent_files(tmp_path: Path) -> int:
    return len(list((tmp_path / "outbox").glob("*.eml")))


def one_hour_later(monkeypatch: pytest.MonkeyPatch, minutes: int = 61) -> None:
    later = outbox.utcnow() + dt.timedelta(minutes=minutes)
    monkeypatch.setattr(outbox, "utcnow", lambda: later)


def test_replies_over_the_hourly_limit_are_held_and_go_out_when_the_hour_allows(
    tmp_path: Path, db_url: str, engine: Engine, world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = setup(tmp_path, db_url)
    for n in range(3):
        drop(tmp_path / "inbox", erase_request(EVA, "alice@example.com", n), f"eva-{n}")
    drop(tmp_path / "inbox", erase_request(OLLE, "bertil@example.org", 9), "olle")
    run(config, engine)

    # Three receipts went out; the three results would be the 4th-6th reply
    # to Eva within the hour. Olle, another sender, is not affected.
    assert states(engine, "eva@cykelbolaget.se") == ["sent"] * 3 + ["held"] * 3
    assert states(engine, "olle@bokhandeln.se") == ["sent", "sent"]
    assert sent_files(tmp_path) == 5
    with db.session_factory(engine)() as session:
        held = session.scalars(select(Event).where(Event.action == "reply_held")).all()
        assert len(held) == 3
        assert {r.state for r in session.scalars(select(Request))} == {"done"}

    one_hour_later(monkeypatch, minutes=30)
    run(config, engine)  # still within the hour of the receipts
    assert states(engine, "eva@cykelbolaget.se").count("held") == 3

    one_hour_later(monkeypatch)
    run(config, engine)
    assert states(engine, "eva@cykelbolaget.se") == ["sent"] * 6
    assert sent_files(tmp_path) == 8
    with db.session_factory(engine)() as session:
        released = session.scalars(select(Event).where(Event.action == "reply_released")).all()
        assert len(released) == 3 and {e.actor for e in released} == {"system"}


def test_released_replies_never_exceed_the_limit_in_the_next_hour(
    tmp_path: Path, db_url: str, engine: Engine, world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = setup(
        tmp_path,
        db_url,
        service={"max_replies_per_sender_per_hour": 2},
    )
    for n in range(3):
        drop(tmp_path / "inbox", erase_request(EVA, "alice@example.com", n), f"eva-{n}")
    run(config, engine)
    assert states(engine, "eva@cykelbolaget.se") == ["sent"] * 2 + ["held"] * 4

    one_hour_later(monkeypatch)
    run(config, engine)
    assert states(engine, "eva@cykelbolaget.se").count("held") == 2  # two more this hour

    one_hour_later(monkeypatch, minutes=122)
    run(config, engine)
    assert states(engine, "eva@cykelbolaget.se") == ["sent"] * 6


def test_an_agent_sees_a_held_reply_in_requests_show_and_releases_it(
    tmp_path: Path, db_url: str, engine: Engine, world: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config, cfg = setup(
        tmp_path,
        db_url,
        service={"max_replies_per_sender_per_hour": 1},
    )
    drop(tmp_path / "inbox", erase_request(EVA, "alice@example.com", 1), "eva")
    run(config, engine)
    receipt, result = replies(engine)
    assert (receipt.state, result.state) == ("sent", "held")
    with db.session_factory(engine)() as session:
        reference = session.scalars(select(Request.reference)).one()
    capsys.readouterr()

    assert main(["--config", cfg, "requests", "show", str(reference)]) == 0
    shown = capsys.readouterr().out
    assert re.search(rf"#{result.id}\s+done\s+held\s+eva@cykelbolaget.se", shown)
    assert "over the hourly reply limit" in shown
    assert main(["--config", cfg, "outbox", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"#{result.id}" in listed and f"#{receipt.id}" not in listed  # sent is not listed

    assert (
        main(["--config", cfg, "outbox", "release", str(result.id), "--by", "agent@kundo.se"]) == 0
    )
    assert main(["--config", cfg, "outbox", "release", str(result.id)]) == 1  # queued now
    assert main(["--config", cfg, "outbox", "release", "999999"]) == 1
    run(config, engine)  # the agent's release goes past the limit
    assert [r.state for r in replies(engine)] == ["sent", "sent"]
    assert sent_files(tmp_path) == 2
    with db.session_factory(engine)() as session:
        event = session.scalars(select(Event).where(Event.action == "reply_released")).one()
        assert event.actor == "agent@kundo.se" and event.detail["was"] == "held"


def test_a_limit_of_zero_holds_nothing(
    tmp_path: Path, db_url: str, engine: Engine, world: None
) -> None:
    config, _ = setup(
        tmp_path,
        db_url,
        service={"max_replies_per_sender_per_hour": 0},
    )
    for n in range(3):
        drop(tmp_path / "inbox", erase_request(EVA, "alice@example.com", n), f"eva-{n}")
    run(config, engine)
    assert states(engine, "eva@cykelbolaget.se") == ["sent"] * 6


def test_a_permanent_smtp_failure_shows_in_requests_show_and_an_agent_can_retry_it(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "plain"}
    config, cfg = setup(
        tmp_path,
        db_url,
        outbox={"transport": "smtp", "smtp": smtp},
    )
    smtp_server.reject_with = "550 5.1.1 <eva@cykelbolaget.se>: mailbox unavailable"
    drop(tmp_path / "inbox", erase_request(EVA, "alice@example.com", 1), "eva")
    run(config, engine)
    assert [r.state for r in replies(engine)] == ["failed", "failed"]
    with db.session_factory(engine)() as session:
        reference = session.scalars(select(Request.reference)).one()
    capsys.readouterr()

    assert main(["--config", cfg, "requests", "show", str(reference)]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"receipt\s+failed\s+eva@cykelbolaget.se", shown)
    assert re.search(r"done\s+failed\s+eva@cykelbolaget.se", shown)
    assert (
        shown.count(
            "failed after 1 attempt(s): 550 5.1.1 <eva@cykelbolaget.se>: mailbox unavailable"
        )
        == 2
    )
    assert "reply_failed" in shown  # and in the audit trail

    # The editor's mailbox is fixed; an agent retries both.
    smtp_server.reject_with = None
    for row in replies(engine):
        assert main(["--config", cfg, "outbox", "release", str(row.id)]) == 0
    run(config, engine)
    assert [r.state for r in replies(engine)] == ["sent", "sent"]
    assert len(smtp_server.received) == 2


def test_a_maildir_message_over_the_size_limit_is_quarantined_with_its_reason(
    tmp_path: Path, db_url: str, engine: Engine, world: None
) -> None:
    config, _ = setup(tmp_path, db_url, intake={"max_message_bytes": 5000})
    big = request_mail(EVA, "Radera alice@example.com.\n" + "x" * 6000, message_id="<big@a.se>")
    drop(tmp_path / "inbox", big, "big")
    drop(tmp_path / "inbox", erase_request(EVA, "alice@example.com", 1), "small")
    run(config, engine)

    assert (tmp_path / "inbox" / "quarantine" / "big").read_bytes() == big
    reason = (tmp_path / "inbox" / "quarantine" / "big.reason").read_text()
    assert reason.startswith("too large: ") and "the limit is 5000" in reason
    assert list((tmp_path / "inbox" / "new").iterdir()) == []
    with db.session_factory(engine)() as session:
        assert [r.state for r in session.scalars(select(Request))] == ["done"]
        (event,) = session.scalars(select(Event).where(Event.action == "mail_quarantined"))
        assert event.detail["key"] == "big" and event.detail["size"] == len(big)
