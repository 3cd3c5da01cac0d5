"""TLS and login against real servers with a certificate made for the test:
aiosmtpd with STARTTLS or implicit TLS and AUTH, Dovecot with STARTTLS and IMAPS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import Engine, select

from kundo_gdpr import db
from kundo_gdpr.config import Config, from_dict
from kundo_gdpr.intake.imap import ImapSource
from kundo_gdpr.models import OutboundMail, utcnow
from kundo_gdpr.replies.outbox import release
from kundo_gdpr.stages.driver import Worker, make_source
from tests import servers
from tests.helpers import drop, request_mail
from tests.servers import Certificate, Dovecot, SmtpServer, free_port

certificate = servers.certificate
dovecot_tls = servers.dovecot_tls

PASSWORD_ENV = "KUNDO_TEST_SMTP_PASSWORD"
# No assertion: answered with one rejection, which is all these tests need.
REQUEST = request_mail("Eva <eva@cykelbolaget.se>", "Radera alice@example.com ur forum.\n")


@pytest.fixture
def smtp_tls(certificate: Certificate, request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """aiosmtpd requiring TLS and a login; `indirect` parameters pick the variant."""
    options: dict[str, Any] = getattr(request, "param", {})
    server = SmtpServer(
        port=free_port(),
        cert=certificate,
        users={"gdpr": "smtp-secret"},
        implicit_tls=options.get("implicit_tls", False),
        mechanisms=options.get("mechanisms", ("LOGIN", "PLAIN")),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def smtp_config(
    tmp_path: Path, db_url: str, smtp: SmtpServer, cert: Certificate | None, **extra: Any
) -> Config:
    return from_dict(
        {
            "database": {"url": db_url},
            "intake": {"maildir": {"path": str(tmp_path / "inbox")}},
            "outbox": {
                "transport": "smtp",
                # Longer than a pass, so one pass makes one attempt.
                "retry_base_seconds": 0.5,
                "max_attempts": 3,
                "smtp": {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "security": "tls" if smtp.implicit_tls else "starttls",
                    "username": "gdpr",
                    "password_env": PASSWORD_ENV,
                    "ca_file": str(cert.cert_file) if cert else "",
                    "timeout_seconds": 5,
                    **extra,
                },
            },
            "auth": {"require": False},
        },
        root=tmp_path,
    )


def run(config: Config, engine: Engine, passes: int = 1) -> list[OutboundMail]:
    """`passes` passes of the worker, built from config as `run` builds it."""
    worker = Worker.from_config(config)
    try:
        for n in range(passes):
            if n:
                time.sleep(0.1)  # let the retry come due
            worker.run_once()
    finally:
        worker.engine.dispose()
    with db.session_factory(engine)() as session:
        return list(session.scalars(select(OutboundMail)))


# aiosmtpd warns about AUTH without STARTTLS even when the whole connection is TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize(
    "smtp_tls",
    [
        {"mechanisms": ("LOGIN",)},
        {"mechanisms": ("PLAIN",)},
        {"implicit_tls": True, "mechanisms": ("PLAIN",)},
    ],
    indirect=True,
    ids=["starttls-login", "starttls-plain", "implicit-tls-plain"],
)
def test_replies_go_out_over_tls_with_the_password_from_the_environment(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    smtp_tls: SmtpServer,
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "smtp-secret")
    drop(tmp_path / "inbox", REQUEST, "one")
    replies = run(smtp_config(tmp_path, db_url, smtp_tls, certificate), engine)

    assert [(r.purpose, r.state) for r in replies] == [("rejected", "sent")]
    assert [m["Message-ID"] for m in smtp_tls.messages()] == [replies[0].message_id]
    assert smtp_tls.logins == [(smtp_tls.mechanisms[0], "gdpr", True)]


def test_a_wrong_smtp_password_keeps_the_reply_with_a_clear_error_until_it_gives_up(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    smtp_tls: SmtpServer,
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    drop(tmp_path / "inbox", REQUEST, "one")
    config = smtp_config(tmp_path, db_url, smtp_tls, certificate)
    # The clock stands still for this one pass: the receipt goes out before the run
    # and again at the pass's end, and on a slow machine its 0.5 s backoff would have
    # passed in between (two attempts in one pass). Moving time is the later passes' job.
    with time_machine.travel(utcnow(), tick=False):
        (reply,) = run(config, engine)

    # A refused login is our configuration, not the reply: it is retried.
    assert reply.state == "queued"
    assert reply.attempts == 1
    assert reply.last_error and reply.last_error.startswith("SMTP login as 'gdpr' refused: 535")
    assert smtp_tls.received == []

    (reply,) = run(config, engine, passes=30)  # max_attempts = 3: after 0.5 + 1 s
    assert (reply.state, reply.attempts) == ("failed", 3)
    assert "535" in (reply.last_error or "")
    assert smtp_tls.received == []
    # smtplib tries each mechanism the server offers, on each of the 3 attempts.
    assert len(smtp_tls.logins) == 3 * len(smtp_tls.mechanisms)
    assert not any(ok for _, _, ok in smtp_tls.logins)

    monkeypatch.setenv(PASSWORD_ENV, "smtp-secret")  # fixed; an agent retries it
    with db.session_factory(engine).begin() as session:
        release(session, session.get_one(OutboundMail, reply.id), "agent@kundo.se")
    (reply,) = run(config, engine)
    assert reply.state == "sent"
    assert len(smtp_tls.received) == 1


def test_a_certificate_that_is_not_trusted_stops_delivery_and_says_why(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    world: None,
    smtp_tls: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "smtp-secret")
    drop(tmp_path / "inbox", REQUEST, "one")
    (reply,) = run(smtp_config(tmp_path, db_url, smtp_tls, cert=None), engine)

    assert reply.state == "queued"
    assert "CERTIFICATE_VERIFY_FAILED" in (reply.last_error or "")
    assert smtp_tls.logins == []  # the password never went to an unverified server
    assert smtp_tls.received == []


# -- IMAP -----------------------------------------------------------------------


def imap_config(tmp_path: Path, server: Dovecot, security: str, **extra: Any) -> Config:
    port = server.imaps_port if security == "tls" else server.port
    return from_dict(
        {
            "intake": {
                "source": "imap",
                "imap": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": security,
                    "username": server.user,
                    "password_env": "KUNDO_TEST_IMAP_PASSWORD",
                    "timeout_seconds": 5,
                    **extra,
                },
            }
        },
        root=tmp_path,
    )


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_is_read_over_imap_with_starttls_or_tls(
    tmp_path: Path,
    dovecot_tls: Dovecot,
    certificate: Certificate,
    security: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUNDO_TEST_IMAP_PASSWORD", dovecot_tls.password)
    dovecot_tls.append(REQUEST)
    config = imap_config(tmp_path, dovecot_tls, security, ca_file=str(certificate.cert_file))
    source = make_source(config)
    assert isinstance(source, ImapSource)
    try:
        (fetched,) = list(source.pending())
        assert fetched.raw.replace(b"\r\n", b"\n") == REQUEST.replace(b"\r\n", b"\n")
        source.done(fetched.key)
        assert source.wait(0.3) is False  # IDLE works over TLS too
    finally:
        source.close()
    assert dovecot_tls.messages("INBOX") == []
    assert len(dovecot_tls.messages("Processed")) == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_imap_refuses_a_certificate_that_is_not_trusted(
    tmp_path: Path, dovecot_tls: Dovecot, security: str
) -> None:
    dovecot_tls.append(REQUEST)
    source = ImapSource(imap_config(tmp_path, dovecot_tls, security).intake.imap, "x")
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        list(source.pending())
    assert len(dovecot_tls.messages("INBOX")) == 1
