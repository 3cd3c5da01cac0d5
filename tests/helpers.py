"""Building request mails and reading the outbox, for tests."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from kundo_gdpr.intake.maildir import deliver

SV_ASSERTION = "Vi har bekräftat personen/personernas identitet."
EN_ASSERTION = "We have confirmed the person's identity."


def request_mail(
    sender: str,
    body: str,
    subject: str = "GDPR-begäran",
    message_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@kundo.se"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 09:00:00 +0100"
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain="test.example")
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def drop(inbox: Path, raw: bytes, name: str) -> None:
    deliver(inbox, raw, name)


def outbox_messages(folder: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def delivered(msg: EmailMessage) -> list[EmailMessage]:
    """A reply's attachments other than its proof.json (tests/test_proof.py reads that)."""
    return [a for a in msg.iter_attachments()
            if isinstance(a, EmailMessage) and a.get_filename() != "proof.json"]


def read_xstring(value: Any) -> Any:
    """A cell's text as Excel reads it: SpreadsheetML's _xHHHH_ escapes
    (ECMA-376 Part 1, ST_Xstring) decoded, which openpyxl leaves to the caller
    for inline strings."""
    if not isinstance(value, str):
        return value
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)
