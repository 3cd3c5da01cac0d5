"""End to end against real servers: Dovecot in, aiosmtpd out, SQLite between."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kundo_gdpr import db
from kundo_gdpr.config import Config, ConfigError, ImapConfig, SmtpConfig, from_dict
from kundo_gdpr.intake.imap import ImapSource
from kundo_gdpr.models import Event, InboundMail, OutboundMail, Request
from kundo_gdpr.replies.smtp import SmtpTransport
from kundo_gdpr.stages.driver import Worker
from tests import servers
from tests.helpers import SV_ASSERTION, request_mail
from tests.servers import Dovecot, SmtpServer
from tests.templates import Templates, build

# The server fixtures live in tests/servers.py, not in conftest.py.
dovecot = servers.dovecot
smtp_server = servers.smtp_server

EVA = "Eva Ek <eva@cykelbolaget.se>"


def erase_body(subject: str = "alice@example.com") -> str:
    return (
        f"Hej!\n\nVår kund {subject} vill bli bortglömd. Radera allt i forum, "
        f"e-post och chatt.\n\n{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
    )


def erase_mail(n: int) -> bytes:
    return request_mail(EVA, erase_body(), message_id=f"<erase-{n}@cykelbolaget.se>")


@pytest.fixture
def engine(tmp_path: Path, templates: Templates) -> Iterator[Engine]:
    """The workers' SQLite file, migrated and seeded: a copy of the session's
    template (tests/templates.py)."""
    path = tmp_path / "imap.sqlite3"
    copied = templates.sqlite_copy("world", path)
    eng = db.make_engine(f"sqlite:///{path}")
    if not copied:
        build(eng, "world")
    yield eng
    eng.dispose()


def mailbox_data(db_url: str, imap: Dovecot, smtp: SmtpServer, **extra: Any) -> dict[str, Any]:
    """Config data for a worker on the test Dovecot and SMTP server; `extra`
    sections are merged into (not put in place of) the defaults."""
    data: dict[str, Any] = {
        "database": {"url": db_url},
        # Every test mail is from Eva; the hourly limit has its own tests.
        "service": {"poll_seconds": 1, "max_replies_per_sender_per_hour": 0},
        "intake": {
            "source": "imap",
            "imap": {
                "host": imap.host,
                "port": imap.port,
                "security": "plain",
                "username": imap.user,
                "timeout_seconds": 10,
            },
        },
        "outbox": {
            "transport": "smtp",
            "retry_base_seconds": 0.2,
            "smtp": {"host": smtp.host, "port": smtp.port, "security": "plain"},
        },
        "policy": {"auto_approve": True},
        # The test mails carry no DKIM signature; authenticity has its own tests.
        "auth": {"require": False},
    }
    for section, values in extra.items():
        data[section] = {**data.get(section, {}), **values}
    return data


def make_config(tmp_path: Path, imap: Dovecot, smtp: SmtpServer, **imap_extra: Any) -> Config:
    # The default poll interval (10 s), so that only IDLE wakes these workers quickly.
    data = mailbox_data(
        f"sqlite:///{tmp_path / 'imap.sqlite3'}", imap, smtp, service={"poll_seconds": 10}
    )
    data["intake"]["imap"].update(imap_extra)
    data["outbox"]["smtp"]["timeout_seconds"] = 5
    return from_dict(data, root=tmp_path)


def make_worker(config: Config, engine: Engine, imap: Dovecot) -> Worker:
    source = ImapSource(config.intake.imap, imap.password)
    transport = SmtpTransport(config.outbox.smtp, "")
    return Worker(config, engine, source, transport)


def run_all(worker: Worker) -> None:
    while worker.run_once():
        pass


def purposes(smtp: SmtpServer) -> Counter[str]:
    """How many replies of each kind arrived, keyed by `purpose/Message-ID`."""
    return Counter(str(m["Message-ID"]) for m in smtp.messages())


def test_requests_appended_to_imap_are_answered_over_smtp_and_moved_to_processed(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    for n in range(3):
        dovecot.append(erase_mail(n))
    config = make_config(tmp_path, dovecot, smtp_server)
    worker = make_worker(config, engine, dovecot)
    run_all(worker)

    with db.session_factory(engine)() as session:
        requests = session.scalars(select(Request)).all()
        assert [r.state for r in requests] == ["done"] * 3
        replies = session.scalars(select(OutboundMail)).all()
        assert sorted(r.purpose for r in replies) == ["done"] * 3 + ["receipt"] * 3
        assert {r.state for r in replies} == {"sent"}
    received = smtp_server.messages()
    assert len(received) == 6
    assert {str(m["To"]) for m in received} == {"eva@cykelbolaget.se"}
    assert all(count == 1 for count in purposes(smtp_server).values())
    assert dovecot.messages("INBOX") == []
    assert len(dovecot.messages("Processed")) == 3
    assert dovecot.messages("Quarantine") == []


def test_a_second_run_processes_nothing_twice(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    dovecot.append(erase_mail(1))
    config = make_config(tmp_path, dovecot, smtp_server)
    run_all(make_worker(config, engine, dovecot))
    assert len(smtp_server.received) == 2

    run_all(make_worker(config, engine, dovecot))

    assert len(smtp_server.received) == 2
    with db.session_factory(engine)() as session:
        assert len(session.scalars(select(InboundMail)).all()) == 1
        assert len(session.scalars(select(Request)).all()) == 1


def test_the_same_mail_seen_again_after_a_uidvalidity_change_is_not_processed_twice(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    # INBOX cannot be deleted, so the requests arrive in a folder of their own.
    raws = [erase_mail(n) for n in range(2)]
    for raw in raws:
        dovecot.append(raw, "Requests")
    config = make_config(tmp_path, dovecot, smtp_server, folder="Requests")
    worker = make_worker(config, engine, dovecot)
    run_all(worker)
    assert len(smtp_server.received) == 4
    with dovecot.client() as client:
        before = client.folder_status("Requests", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        client.delete_folder("Requests")
        time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
        client.create_folder("Requests")
        after = client.folder_status("Requests", ["UIDVALIDITY"])[b"UIDVALIDITY"]
    assert after != before
    for raw in raws:  # e.g. restored from a backup
        dovecot.append(raw, "Requests")

    run_all(worker)  # the same worker: its connection still has the old folder open
    run_all(make_worker(config, engine, dovecot))

    assert len(smtp_server.received) == 4
    with db.session_factory(engine)() as session:
        assert len(session.scalars(select(InboundMail)).all()) == 2
        assert len(session.scalars(select(Request)).all()) == 2
    assert dovecot.messages("Requests") == []


def test_replies_wait_in_the_outbox_while_smtp_is_down_and_go_out_once_it_is_back(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    smtp_server.stop()
    dovecot.append(erase_mail(1))
    config = make_config(tmp_path, dovecot, smtp_server)
    worker = make_worker(config, engine, dovecot)
    run_all(worker)

    with db.session_factory(engine)() as session:
        replies = session.scalars(select(OutboundMail)).all()
        assert len(replies) == 2
        assert {r.state for r in replies} == {"queued"}
        assert all(r.last_error for r in replies)
        due = max(r.next_attempt_at for r in replies)

    smtp_server.start()
    # Past the retries' backoff: how many attempts the first run made (and so how
    # long the next waits) depends on how fast its passes went.
    time.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()) + 0.05)
    run_all(worker)

    with db.session_factory(engine)() as session:
        assert {r.state for r in session.scalars(select(OutboundMail))} == {"sent"}
    assert len(smtp_server.received) == 2
    assert all(count == 1 for count in purposes(smtp_server).values())


def test_a_permanent_smtp_failure_marks_the_reply_failed(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    smtp_server.reject_with = "550 5.1.1 mailbox unavailable"
    dovecot.append(erase_mail(1))
    config = make_config(tmp_path, dovecot, smtp_server)
    run_all(make_worker(config, engine, dovecot))

    with db.session_factory(engine)() as session:
        replies = session.scalars(select(OutboundMail)).all()
        assert replies and {r.state for r in replies} == {"failed"}
        assert all(r.attempts == 1 for r in replies)
        assert all("550" in (r.last_error or "") for r in replies)
        actions = [e.action for e in session.scalars(select(Event))]
        assert actions.count("reply_failed") == len(replies)
    assert smtp_server.received == []


def test_the_worker_wakes_on_idle_when_mail_arrives(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    config = make_config(tmp_path, dovecot, smtp_server)
    source = ImapSource(config.intake.imap, dovecot.password)
    assert list(source.pending()) == []
    woke: list[bool] = []
    # A wait of two minutes that ends within one: IDLE woke it, not its timeout
    # (no bound on the clock that a slow machine could break).
    waiter = threading.Thread(target=lambda: woke.append(source.wait(120)))
    waiter.start()
    time.sleep(0.3)
    dovecot.append(erase_mail(1))
    waiter.join(timeout=60)
    assert woke == [True]
    assert len(list(source.pending())) == 1


def test_the_source_reconnects_after_dovecot_restarts_during_idle(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    config = make_config(tmp_path, dovecot, smtp_server)
    source = ImapSource(config.intake.imap, dovecot.password)
    assert list(source.pending()) == []
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(source.wait(10)))
    waiter.start()
    time.sleep(0.3)
    dovecot.restart()
    dovecot.append(erase_mail(1))
    waiter.join(timeout=12)
    assert woke == [True]

    worker = Worker(config, engine, source, SmtpTransport(config.outbox.smtp, ""))
    run_all(worker)
    assert len(smtp_server.received) == 2
    assert dovecot.messages("INBOX") == []


@pytest.mark.parametrize(
    ("section", "data"),
    [
        ("intake.imap", {"intake": {"imap": {"host": "imap.example.com", "security": "plain"}}}),
        ("intake.imap", {"intake": {"imap": {"host": "192.0.2.7", "security": "plain"}}}),
        ("outbox.smtp", {"outbox": {"smtp": {"host": "smtp.example.com", "security": "plain"}}}),
    ],
)
def test_plain_imap_or_smtp_to_a_host_that_is_not_loopback_stops_start_up(
    tmp_path: Path, section: str, data: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match=rf"{section}\.security: 'plain' is allowed only on"):
        from_dict(data, root=tmp_path)
    config_file = tmp_path / "config.toml"
    write_toml(config_file, data)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kundo-gdpr"), "--config", str(config_file), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{section}.security" in result.stderr


def test_plain_on_loopback_is_allowed_and_a_hand_built_config_is_still_refused(
    tmp_path: Path,
) -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        from_dict({"intake": {"imap": {"host": host, "security": "plain"}}}, root=tmp_path)
    remote = dataclasses.replace(ImapConfig(), host="imap.example.com", security="plain")
    with pytest.raises(ValueError, match="loopback"):
        ImapSource(remote, "secret")
    remote_smtp = dataclasses.replace(SmtpConfig(), host="smtp.example.com", security="plain")
    with pytest.raises(ValueError, match="loopback"):
        SmtpTransport(remote_smtp, "secret")


def test_a_running_worker_is_woken_by_idle_and_stops_on_request(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    # The poll interval is an hour, so an answer within the minute we wait
    # can only come from IDLE waking the worker: no latency bound needed.
    config = make_config(tmp_path, dovecot, smtp_server)
    config = dataclasses.replace(
        config, service=dataclasses.replace(config.service, poll_seconds=3600.0)
    )
    worker = make_worker(config, engine, dovecot)
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        time.sleep(0.5)  # let it settle into IDLE
        dovecot.append(erase_mail(1))
        deadline = time.monotonic() + 60
        while len(smtp_server.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(smtp_server.received) == 2


def write_toml(path: Path, data: dict[str, Any]) -> None:
    """Just enough TOML for a config: tables of scalars, nested one level or more."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{key} = {json.dumps(value)}")
        for key, value in values.items():
            if isinstance(value, dict):
                table(f"{prefix}.{key}" if prefix else key, value)

    table("", data)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def config_data(tmp_path: Path, imap: Dovecot, smtp: SmtpServer) -> dict[str, Any]:
    return mailbox_data(f"sqlite:///{tmp_path / 'imap.sqlite3'}", imap, smtp)


# 200 mails and 12 kills take about 25 s here; the variables scale it up or down.
CRASH_MAILS = int(os.environ.get("KUNDO_GDPR_CRASH_MAILS", "200"))
CRASH_KILLS = int(os.environ.get("KUNDO_GDPR_CRASH_KILLS", "12"))


@pytest.mark.slow
def test_a_worker_killed_at_random_moments_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, engine: Engine, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    total = CRASH_MAILS
    raws = [erase_mail(n) for n in range(total)]
    with dovecot.client() as client:
        for raw in raws:
            client.append("INBOX", raw)
    config_file = tmp_path / "config.toml"
    write_toml(config_file, config_data(tmp_path, dovecot, smtp_server))
    command = [str(Path(sys.executable).parent / "kundo-gdpr"), "--config", str(config_file), "run"]
    env = {**os.environ, "KUNDO_GDPR_IMAP_PASSWORD": dovecot.password}
    rng = random.Random(4)
    kills = 0
    factory = db.session_factory(engine)

    def finished() -> bool:
        with factory() as session:
            open_replies = session.scalar(
                select(func.count()).select_from(OutboundMail).where(OutboundMail.state != "sent")
            )
            done = session.scalar(
                select(func.count()).select_from(Request).where(Request.state == "done")
            )
        return done == total and open_replies == 0 and not dovecot.messages("INBOX")

    deadline = time.monotonic() + 30 + 2 * total
    while time.monotonic() < deadline:
        worker = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        if kills < CRASH_KILLS:
            time.sleep(rng.uniform(0.3, 2.0))
            worker.kill()
            worker.wait()
            kills += 1
            continue
        while time.monotonic() < deadline and not finished():
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
        break

    assert finished()
    with factory() as session:
        mails = session.scalars(select(InboundMail)).all()
        assert len(mails) == total
        assert len({m.sha256 for m in mails}) == total
        requests = session.scalars(select(Request)).all()
        assert len(requests) == total
        replies = Counter((r.request_id, r.purpose) for r in session.scalars(select(OutboundMail)))
        assert set(replies.values()) == {1}
        assert len(replies) == 2 * total
        done_events = Counter(
            e.request_id for e in session.scalars(select(Event).where(Event.action == "done"))
        )
        assert len(done_events) == total
        assert set(done_events.values()) == {1}  # no erasure committed twice
    by_id = Counter(str(m["Message-ID"]) for m in smtp_server.messages())
    assert len(by_id) == 2 * total  # one receipt and one result per request
    resent = sum(n - 1 for n in by_id.values())
    assert resent <= kills  # only a kill between SMTP acceptance and commit resends
    assert len(dovecot.messages("Processed")) == total
    print(f"{kills} kills, {resent} resends with the same Message-ID")


def test_waiting_without_new_mail_returns_false_after_the_timeout(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    source = ImapSource(make_config(tmp_path, dovecot, smtp_server).intake.imap, dovecot.password)
    started = time.monotonic()
    assert source.wait(0.5) is False
    assert 0.4 < time.monotonic() - started < 30  # waited its time, and did not hang


def test_while_dovecot_is_down_fetching_fails_loudly_and_waiting_does_not_hang(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpServer
) -> None:
    source = ImapSource(make_config(tmp_path, dovecot, smtp_server).intake.imap, dovecot.password)
    dovecot.stop()
    with pytest.raises(OSError):
        list(source.pending())
    started = time.monotonic()
    assert source.wait(0.5) is True  # "look again": the caller's next pass reconnects
    assert time.monotonic() - started < 30  # did not hang on the dead connection
    dovecot.start()
    dovecot.append(erase_mail(1))
    assert len(list(source.pending())) == 1
