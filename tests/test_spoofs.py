"""Spoofed and doubtful mail through real Dovecot with `kundo-gdpr run` running:
nothing is erased or exported, no forged sender is answered, and each request
carries the finding that says why, as the agents' page shows it.

Mails are signed with a key made here; its public half is pinned through
`auth.pinned_keys`, so nothing asks DNS.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, func, select

from kundo_gdpr import db
from kundo_gdpr.models import ChatSession, Request
from kundo_gdpr.models.queue import PARSED
from kundo_gdpr.web.i18n import finding_text
from tests import servers
from tests.helpers import EN_ASSERTION, SV_ASSERTION, request_mail
from tests.servers import Dovecot, SmtpServer
from tests.test_imap_smtp import mailbox_data, write_toml
from tests.test_mailbox_real import RunningWorker, wait_until

dovecot = servers.dovecot
smtp_server = servers.smtp_server

ERASE_ALICE = (
    "Hej!\n\nRadera alla chattar från alice@example.com.\n\n"
    f"{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
)
HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


@pytest.fixture(scope="module")
def key() -> bytes:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())


def _record(private_pem: bytes) -> str:
    loaded = serialization.load_pem_private_key(private_pem, password=None)
    der = loaded.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def sign(raw: bytes, domain: str, key: bytes) -> bytes:
    raw = raw.replace(b"\n", b"\r\n")
    return bytes(dkim.sign(raw, b"s1", domain.encode(), key, include_headers=HEADERS)) + raw


@pytest.fixture
def worker(
    tmp_path: Path, db_url: str, dovecot: Dovecot, smtp_server: SmtpServer, key: bytes
) -> Iterator[Callable[[], RunningWorker]]:
    keys = "".join(f"s1._domainkey.{d} {_record(key)}\n"
                   for d in ("cykelbolaget.se", "evil.example"))
    (tmp_path / "dkim-keys.txt").write_text(keys, encoding="utf-8")
    data = mailbox_data(db_url, dovecot, smtp_server,
                        auth={"require": True, "trusted_authserv_ids": ["mx.kundo.se"],
                              "pinned_keys": "dkim-keys.txt"})
    write_toml(tmp_path / "config.toml", data)
    started: list[RunningWorker] = []

    def start() -> RunningWorker:
        started.append(RunningWorker(tmp_path / "config.toml", dovecot.password,
                                     tmp_path / "worker.log"))
        return started[-1]

    yield start
    for running in started:
        running.kill()


def spoofs(key: bytes) -> dict[str, tuple[bytes, str, str]]:
    """message-id -> (raw mail, the state it must end in, the finding it must carry)."""
    eva = "Eva Ek <eva@cykelbolaget.se>"

    def mail(tag: str, body: str = ERASE_ALICE, sender: str = eva, **headers: str) -> bytes:
        return request_mail(sender, body, message_id=f"<{tag}@spoof.example>",
                            extra_headers=headers or None)

    forged_ar = ("mx.kundo.se; dmarc=pass header.from=cykelbolaget.se; "
                 "dkim=pass header.d=cykelbolaget.se")
    below_received = (b"Received: from relay.evil.example (relay.evil.example [192.0.2.7])\r\n"
                      b"\tby mx.evil.example; Mon, 23 Nov 2026 09:00:01 +0100\r\n"
                      + mail("below-received", **{"Authentication-Results": forged_ar}))
    below_other = (b"Authentication-Results: mx.evil.example; none\r\n"
                   + mail("below-other", **{"Authentication-Results": forged_ar}))
    return {
        "below-received": (below_received, "needs_review", "sender_unauthenticated"),
        "below-other": (below_other, "needs_review", "sender_unauthenticated"),
        "stranger": (mail("stranger", sender="victim@example.net"), "quarantined",
                     "unauthenticated_stranger"),
        "unaligned": (sign(mail("unaligned"), "evil.example", key), "needs_review",
                      "sender_unauthenticated"),
        "list": (sign(mail("list", **{"List-Unsubscribe": "<https://cykelbolaget.se/u?1>"}),
                      "cykelbolaget.se", key), "ignored", "auto_reply"),
        "dont-delete": (sign(mail("dont-delete", "Hello,\n\nPlease export alice@example.com's "
                                  f"chats. Do not delete anything.\n\n{EN_ASSERTION}\n\nEva\n"),
                             "cykelbolaget.se", key), "needs_review", "kind_doubt"),
    }


def test_spoofed_mail_through_dovecot_runs_nothing_and_each_request_says_why(
    db_url: str, engine: Engine, world: None, dovecot: Dovecot, smtp_server: SmtpServer,
    worker: Callable[[], RunningWorker], key: bytes,
) -> None:
    cases = spoofs(key)
    running = worker()
    with dovecot.client() as client:
        for raw, _, _ in cases.values():
            client.append("INBOX", raw)
    factory = db.session_factory(engine)

    def settled() -> bool:
        with factory() as session:
            states = list(session.scalars(select(Request.state)))
        return len(states) == len(cases) and PARSED not in states

    assert wait_until(settled, 90), running.log.read_text()
    assert wait_until(lambda: len(smtp_server.received) >= 4, 30), running.log.read_text()
    assert running.stop() == 0

    with factory() as session:
        found: dict[str, Any] = {
            (r.message_id or "").strip("<>").split("@")[0]: r
            for r in session.scalars(select(Request))
        }
        for tag, (_, state, code) in cases.items():
            request = found[tag]
            assert (tag, request.state) == (tag, state)
            finding = next(f for f in request.findings if f["code"] == code)
            # The page says it in words, in both languages.
            for language in ("sv", "en"):
                text = finding_text(language, code, finding["args"])
                assert code not in text and text.strip(), (language, code)
        assert found["below-received"].authenticated is False
        reasons = next(f for f in found["below-received"].findings
                       if f["code"] == "sender_unauthenticated")["args"]["reasons"]
        assert "authres_not_topmost: mx.kundo.se" in reasons
        chats = session.scalar(select(func.count()).select_from(ChatSession).where(
            ChatSession.visitor_email == "alice@example.com"))
    assert chats == 2  # nothing was erased
    # Receipts only, only to Eva's stored address; the stranger and the list got nothing.
    recipients = {rcpt for m in smtp_server.received for rcpt in m.recipients}
    assert recipients == {"eva@cykelbolaget.se"}
    assert all(".receipt@" in str(m["Message-ID"]) for m in smtp_server.messages())
