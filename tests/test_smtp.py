"""SMTP and addresses that are not ASCII (RFC 6531), against a real aiosmtpd:
SMTPUTF8 when the server offers it; otherwise a permanent failure that says why."""

from __future__ import annotations

import dataclasses
import email.utils

import pytest

from kundo_gdpr.config import SmtpConfig
from kundo_gdpr.replies.delivery import TransportError
from kundo_gdpr.replies.smtp import SmtpTransport
from tests.servers import SmtpServer, free_port

ASA = "åsa@exempel.se"


def message(to: str) -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = "support@kundo.se"
    msg["To"] = to
    msg["Subject"] = "Mottagningsbevis"
    msg["Message-ID"] = email.utils.make_msgid(domain="gdpr.kundo.se")
    msg.set_content("Vi har tagit emot er begäran.\n")
    return msg.as_bytes(policy=email.policy.SMTPUTF8)


def transport(server: SmtpServer) -> SmtpTransport:
    config = dataclasses.replace(SmtpConfig(), host=server.host, port=server.port,
                                 security="plain", timeout_seconds=5)
    return SmtpTransport(config, "")


@pytest.fixture(params=[True, False], ids=["smtputf8", "ascii-only"])
def server(request: pytest.FixtureRequest) -> SmtpServer:
    smtp = SmtpServer(port=free_port(), smtputf8=request.param)
    smtp.start()
    request.addfinalizer(smtp.stop)
    return smtp


def test_a_non_ascii_recipient_goes_with_smtputf8_or_fails_for_good(server: SmtpServer) -> None:
    raw = message(ASA)
    if server.smtputf8:
        transport(server).send("support@kundo.se", ASA, raw, "<m@gdpr.kundo.se>")
        (received,) = server.received
        assert received.recipients == [ASA]
        assert str(received.message()["To"]) == ASA
        return
    with pytest.raises(TransportError) as failed:
        transport(server).send("support@kundo.se", ASA, raw, "<m@gdpr.kundo.se>")
    assert failed.value.permanent
    assert "SMTPUTF8" in str(failed.value) and ASA in str(failed.value)
    assert server.received == []


def test_an_ascii_recipient_needs_no_smtputf8(server: SmtpServer) -> None:
    transport(server).send("support@kundo.se", "eva@cykelbolaget.se",
                           message("eva@cykelbolaget.se"), "<m@gdpr.kundo.se>")
    assert [r.recipients for r in server.received] == [["eva@cykelbolaget.se"]]
