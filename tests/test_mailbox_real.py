"""Mailboxes against real servers, on both databases: our own replies fed back
into the inbox, mail that cannot be stored, and `kundo-gdpr run` as a process
that is stopped with SIGTERM or sees Dovecot restart under it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from kundo_gdpr import db
from kundo_gdpr.config import from_dict
from kundo_gdpr.models import Event, InboundMail, OutboundMail, Request
from kundo_gdpr.stages import fetch
from tests import servers
from tests.helpers import request_mail
from tests.servers import Dovecot, SmtpServer
from tests.test_imap_smtp import (
    erase_body,
    erase_mail,
    mailbox_data,
    make_worker,
    run_all,
    write_toml,
)

dovecot = servers.dovecot
smtp_server = servers.smtp_server

KUNDO_GDPR = str(Path(sys.executable).parent / "kundo-gdpr")


def bertil_mail(n: int) -> bytes:
    """A second request for someone with data: a repeated erase of alice, whose items
    are gone, would rightly wait for an agent (subject_not_found)."""
    return erase_mail(n).replace(b"alice@example.com", b"bertil@example.org")


def requests(engine: Engine) -> list[Request]:
    with db.session_factory(engine)() as session:
        return list(session.scalars(select(Request).order_by(Request.id)))


def wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- our own replies ------------------------------------------------------------


def without_headers(raw: bytes, *names: str) -> bytes:
    msg = message_from_bytes(raw, policy=policy.compat32)
    for name in names:
        del msg[name]
    return msg.as_bytes()


def test_our_own_reply_fed_back_into_the_inbox_is_stored_and_never_answered(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
) -> None:
    config = from_dict(mailbox_data(db_url, dovecot, smtp_server), root=tmp_path)
    worker = make_worker(config, engine, dovecot)
    dovecot.append(erase_mail(1))
    run_all(worker)
    receipt = next(r.raw for r in smtp_server.received if b".receipt@" in r.raw)
    receipt_id = "".join(str(message_from_bytes(receipt)["Message-ID"]).split())  # unfolded
    assert receipt_id.endswith("@gdpr.kundo.se>")

    # As it left us; with every robot header stripped by some relay, so only
    # the Message-ID's domain says it is ours; and with the Message-ID
    # rewritten by a relay, so only our marker header does.
    stripped = without_headers(
        receipt, "Auto-Submitted", "X-Auto-Response-Suppress", "X-Kundo-GDPR-Reply"
    )
    rewritten = without_headers(receipt, "Auto-Submitted", "X-Auto-Response-Suppress")
    rewritten = rewritten.replace(receipt_id.encode(), b"<relay-1@mx.cykelbolaget.se>")
    # The editor answers our receipt with a new request: that is not a loop.
    answer = request_mail(
        "Eva Ek <eva@cykelbolaget.se>",
        erase_body("bertil@example.org"),
        subject="Re: " + " ".join(str(message_from_bytes(receipt)["Subject"]).split()),
        message_id="<answer-1@cykelbolaget.se>",
        extra_headers={"In-Reply-To": receipt_id, "References": receipt_id},
    )
    # The receipt as it left us comes after the stripped copy with the same
    # Message-ID, so it is stored as a duplicate of that: never answered either.
    for raw in (stripped, receipt, rewritten, answer):
        dovecot.append(raw)
    run_all(worker)

    first, *fed_back, answered = requests(engine)
    assert first.state == "done"
    assert [r.message_id for r in fed_back] == [receipt_id, "<relay-1@mx.cykelbolaget.se>"]
    assert [r.state for r in fed_back] == ["ignored"] * 2
    assert all(r.problems == ["own_reply"] for r in fed_back)
    assert answered.state == "done"
    with db.session_factory(engine)() as session:
        stored = session.scalars(select(InboundMail.state).order_by(InboundMail.id)).all()
        assert stored == ["parsed", "parsed", "duplicate", "parsed", "parsed"]
        to_fed_back = session.scalars(
            select(OutboundMail).where(OutboundMail.request_id.in_([r.id for r in fed_back]))
        ).all()
        assert to_fed_back == []
    # Two replies to the first request and two to the editor's answer; none to ourselves.
    assert len(smtp_server.received) == 4
    assert {rcpt for r in smtp_server.received for rcpt in r.recipients} == {"eva@cykelbolaget.se"}
    assert len(dovecot.messages("Processed")) == 5


# -- mail that cannot be stored -------------------------------------------------


def big_mail(n: int) -> bytes:
    return request_mail(
        "Eva Ek <eva@cykelbolaget.se>",
        erase_body() + ("Bilaga i brödtexten. " * 2000),
        message_id=f"<big-{n}@cykelbolaget.se>",
    )


def test_mail_over_the_size_limit_goes_to_a_new_quarantine_folder_and_the_rest_goes_on(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
) -> None:
    with dovecot.client() as client:
        assert not client.folder_exists("Quarantine")
    data = mailbox_data(db_url, dovecot, smtp_server, intake={"max_message_bytes": 10_000})
    config = from_dict(data, root=tmp_path)
    for raw in (erase_mail(1), big_mail(1), erase_mail(2)):
        dovecot.append(raw)
    run_all(make_worker(config, engine, dovecot))

    assert [r.state for r in requests(engine)] == ["done", "done"]
    assert dovecot.messages("INBOX") == []
    assert len(dovecot.messages("Processed")) == 2
    (quarantined,) = dovecot.messages("Quarantine")
    assert b"<big-1@cykelbolaget.se>" in quarantined
    with db.session_factory(engine)() as session:
        (event,) = session.scalars(select(Event).where(Event.action == "mail_quarantined"))
        assert event.detail["reason"].startswith("too large: ")
        assert event.detail["reason"].endswith("bytes, the limit is 10000")
        assert event.detail["source"].startswith("imap:kundo@127.0.0.1")
    assert len(smtp_server.received) == 4


def test_mail_whose_storing_fails_is_quarantined_not_retried_forever(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_store = fetch.store

    def store_with_a_bug(factory: Any, name: str, fetched: Any) -> int:
        # Stands in for a bug our tests have not found yet, hit by one message.
        if b"<poison@cykelbolaget.se>" in fetched.raw:
            raise ValueError("a bug in storing")
        return real_store(factory, name, fetched)

    monkeypatch.setattr(fetch, "store", store_with_a_bug)
    poison = request_mail(
        "eva@cykelbolaget.se", erase_body(), message_id="<poison@cykelbolaget.se>"
    )
    for raw in (poison, erase_mail(1)):
        dovecot.append(raw)
    worker = make_worker(
        from_dict(mailbox_data(db_url, dovecot, smtp_server), root=tmp_path), engine, dovecot
    )
    run_all(worker)
    run_all(worker)  # nothing comes back

    assert [r.state for r in requests(engine)] == ["done"]
    assert dovecot.messages("INBOX") == []
    assert [b"<poison@" in raw for raw in dovecot.messages("Quarantine")] == [True]
    with db.session_factory(engine)() as session:
        (event,) = session.scalars(select(Event).where(Event.action == "mail_quarantined"))
        assert event.detail["reason"] == "cannot be stored: ValueError: a bug in storing"


def test_mail_stays_in_the_inbox_while_the_database_is_unavailable(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def database_down(factory: Any, name: str, fetched: Any) -> int:
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    real_store = fetch.store
    monkeypatch.setattr(fetch, "store", database_down)
    dovecot.append(erase_mail(1))
    worker = make_worker(
        from_dict(mailbox_data(db_url, dovecot, smtp_server), root=tmp_path), engine, dovecot
    )
    with pytest.raises(OperationalError):  # run_forever logs it and tries again
        worker.run_once()
    assert len(dovecot.messages("INBOX")) == 1
    assert dovecot.messages("Quarantine") == []

    monkeypatch.setattr(fetch, "store", real_store)
    run_all(worker)
    assert [r.state for r in requests(engine)] == ["done"]


# -- kundo-gdpr run as a process ----------------------------------------------------


class RunningWorker:
    """`kundo-gdpr run` in a subprocess, its log in a file."""

    def __init__(self, config_file: Path, password: str, log: Path) -> None:
        env = {**os.environ, "KUNDO_GDPR_IMAP_PASSWORD": password}
        self.log = log
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [KUNDO_GDPR, "--config", str(config_file), "run"], env=env, stderr=self._log
        )

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM; the exit status, which must come within `timeout` seconds."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def start_worker(
    tmp_path: Path, db_url: str, dovecot: Dovecot, smtp_server: SmtpServer
) -> Iterator[Callable[[], RunningWorker]]:
    config_file = tmp_path / "config.toml"
    write_toml(config_file, mailbox_data(db_url, dovecot, smtp_server))
    started: list[RunningWorker] = []

    def start() -> RunningWorker:
        worker = RunningWorker(config_file, dovecot.password, tmp_path / "worker.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def receipts(smtp: SmtpServer) -> Counter[str]:
    return Counter(
        str(m["Message-ID"]) for m in smtp.messages() if ".receipt@" in str(m["Message-ID"])
    )


def test_sigterm_stops_run_after_the_unit_in_hand_and_a_restart_finishes_the_rest(
    db_url: str,
    engine: Engine,
    world: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    start_worker: Callable[[], RunningWorker],
) -> None:
    total = 60
    with dovecot.client() as client:
        for n in range(total):
            client.append("INBOX", erase_mail(n))
    worker = start_worker()
    assert wait_until(lambda: len(smtp_server.received) >= 1, 60), "nothing was answered"

    stopped = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - stopped < 10

    # It stopped with work left, and what it did it did whole: every stored
    # mail is out of the inbox, every mail is in exactly one of the two places,
    # and each request that ran has its result queued with it.
    with db.session_factory(engine)() as session:
        stored = session.scalar(select(func.count()).select_from(InboundMail)) or 0
        done = session.scalars(select(Request.id).where(Request.state == "done")).all()
        results = session.scalars(
            select(OutboundMail.request_id).where(OutboundMail.purpose == "done")
        ).all()
        unsent = session.scalar(
            select(func.count()).select_from(OutboundMail).where(OutboundMail.state != "sent")
        )
    assert sorted(done) == sorted(results)
    assert len(done) < total or unsent, "it drained everything instead of stopping"
    assert len(dovecot.messages("INBOX")) + len(dovecot.messages("Processed")) == total
    assert len(dovecot.messages("Processed")) <= stored

    again = start_worker()
    assert wait_until(
        lambda: len(receipts(smtp_server)) == total and len(smtp_server.received) == 2 * total, 120
    )
    assert again.stop() == 0
    assert set(receipts(smtp_server).values()) == {1}  # exactly one receipt per request
    assert len(smtp_server.received) == 2 * total
    assert [r.state for r in requests(engine)] == ["done"] * total
    assert dovecot.messages("INBOX") == []
    assert "Traceback" not in worker.log.read_text()


def test_a_running_worker_reconnects_after_dovecot_restarts_and_answers_new_mail(
    db_url: str,
    engine: Engine,
    world: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    start_worker: Callable[[], RunningWorker],
) -> None:
    worker = start_worker()
    dovecot.append(erase_mail(1))
    assert wait_until(lambda: len(smtp_server.received) == 2, 60)
    time.sleep(1)  # back in IDLE

    dovecot.restart()
    dovecot.append(bertil_mail(2))  # arrives while the worker's connection is dead

    assert wait_until(lambda: len(smtp_server.received) == 4, 30)
    assert worker.process.poll() is None  # the same process, never restarted
    assert worker.stop() == 0
    assert "IMAP connection to 127.0.0.1 lost" in worker.log.read_text()
    assert [r.state for r in requests(engine)] == ["done", "done"]
    assert dovecot.messages("INBOX") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database plays no part
def test_sigterm_is_honoured_while_the_worker_backs_off_from_a_dead_imap_server(
    db_url: str,
    engine: Engine,
    dovecot: Dovecot,
    start_worker: Callable[[], RunningWorker],
) -> None:
    worker = start_worker()
    time.sleep(1.5)  # connected and idling
    dovecot.stop()
    # Reconnecting fails again and again; the pause between tries doubles
    # (0.5, 1, 2, 4, 8 s ...; a wait for mail cuts its own to poll_seconds), so
    # after the sixth failure the worker sleeps in a long one (8 s): counted in
    # its log rather than guessed from the clock.
    assert wait_until(lambda: worker.log.read_text().count(
        "IMAP connection to 127.0.0.1 lost") >= 6, 60), worker.log.read_text()
    time.sleep(0.5)  # well into that pause
    assert worker.process.poll() is None
    stopped = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - stopped < 3
    assert "IMAP connection to 127.0.0.1 lost" in worker.log.read_text()


dovecot_without_move_or_idle = servers.dovecot_without_move_or_idle


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database plays no part
def test_without_move_or_idle_the_worker_copies_expunges_and_polls(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    dovecot_without_move_or_idle: Dovecot,
    smtp_server: SmtpServer,
) -> None:
    imap = dovecot_without_move_or_idle
    data = mailbox_data(db_url, imap, smtp_server, service={"poll_seconds": 0.5})
    worker = make_worker(from_dict(data, root=tmp_path), engine, imap)
    with imap.client() as client:
        assert not {b"MOVE", b"IDLE"} & set(client.capabilities())
    started = time.monotonic()
    assert worker.source.wait(0.3) is True  # no IDLE: a plain sleep, then look again
    assert 0.25 < time.monotonic() - started < 30  # slept its time, and did not hang

    imap.append(erase_mail(1))
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        assert wait_until(lambda: len(smtp_server.received) == 2, 30)
        imap.append(bertil_mail(2))  # found by polling, not by IDLE
        assert wait_until(lambda: len(smtp_server.received) == 4, 30)
    finally:
        worker.stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert [r.state for r in requests(engine)] == ["done", "done"]
    assert len(imap.messages("Processed")) == 2
    assert imap.messages("INBOX") == []  # expunged, or flagged \\Deleted where no UIDPLUS


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database plays no part
def test_a_processed_folder_deleted_while_the_worker_runs_is_made_again(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
) -> None:
    worker = make_worker(
        from_dict(mailbox_data(db_url, dovecot, smtp_server), root=tmp_path), engine, dovecot
    )
    dovecot.append(erase_mail(1))
    run_all(worker)
    with dovecot.client() as client:
        client.delete_folder("Processed")
    dovecot.append(bertil_mail(2))
    run_all(worker)  # the same connection, which made the folder at login

    assert [r.state for r in requests(engine)] == ["done", "done"]
    assert dovecot.messages("INBOX") == []
    assert len(dovecot.messages("Processed")) == 1  # the first went with the old folder
