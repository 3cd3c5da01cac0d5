"""Large mail: a 20 MB attachment is never decoded, a 20 MB body is cut before decoding.

The parser's one decode step is `mime.transfer_decode`; a counting wrapper
around it records what it was given, so the tests see exactly which bytes
were decoded instead of timing anything.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from kundo_gdpr.intake import mime as parse_module
from kundo_gdpr.intake.parse import MAX_TEXT_BYTES, parse

TWENTY_MB = 20 * 1024 * 1024
BODY = (
    "Hej!\n\nRadera alice@example.com i forumet.\n\n"
    "Vi har bekräftat personens identitet.\n\nMed vänliga hälsningar\nEva\n"
)
HIDDEN_REQUEST = "Radera mejl för bertil@example.org. Vi har bekräftat personens identitet.\n"


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, str]]]:
    """(encoded length, transfer encoding) of every payload the parser decodes."""
    calls: list[tuple[int, str]] = []
    real = parse_module.transfer_decode

    def counting(encoded: str, cte: str) -> bytes:
        calls.append((len(encoded), cte))
        return real(encoded, cte)

    monkeypatch.setattr(parse_module, "transfer_decode", counting)
    yield calls


def _mail() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Eva Ek <eva@cykelbolaget.se>"
    msg["To"] = "support@kundo.se"
    msg["Subject"] = "Radering"
    msg["Message-ID"] = "<large@test.example>"
    msg.set_content(BODY)
    return msg


def _with_raw_attachment(headers: str, payload: bytes) -> bytes:
    """The small request mail with one attachment part spliced in as raw bytes."""
    msg = _mail()
    msg.add_attachment(b"x", maintype="application", subtype="octet-stream", filename="x.bin")
    raw = msg.as_bytes()
    boundary = msg.get_boundary()
    assert boundary is not None
    last = f"--{boundary}--".encode()
    part = f"--{boundary}\n{headers}\n\n".encode() + payload + b"\n"
    return raw.replace(last, part + last)


def test_a_corrupt_20_mb_base64_attachment_is_listed_but_never_decoded(
    decoded: list[tuple[int, str]],
) -> None:
    small = parse(_mail().as_bytes())
    decoded.clear()
    # Not base64 at all (and no line breaks): decoding it would give garbage.
    garbage = b"!*~ nicht base64 ~*!" * (TWENTY_MB // 20)
    raw = _with_raw_attachment(
        "Content-Type: application/pdf; name=scan.pdf\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-Disposition: attachment; filename=scan.pdf",
        garbage,
    )
    assert len(raw) > TWENTY_MB
    parsed = parse(raw)
    assert parsed.contract() == {**small.contract()}
    assert [(a.filename, a.content_type) for a in parsed.attachments][-1] == (
        "scan.pdf",
        "application/pdf",
    )
    assert parsed.attachments[-1].size >= TWENTY_MB
    # Only the body part was decoded: one call, of the body's size.
    assert len(decoded) == 1
    assert decoded[0][0] < 1024


def test_a_20_mb_text_attachment_is_not_read_as_the_request(
    decoded: list[tuple[int, str]],
) -> None:
    text = base64.encodebytes((HIDDEN_REQUEST * (TWENTY_MB // len(HIDDEN_REQUEST))).encode())
    raw = _with_raw_attachment(
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-Disposition: attachment; filename=notes.txt",
        text,
    )
    parsed = parse(raw)
    assert parsed.subjects == ("alice@example.com",)
    assert parsed.channels == ("forum",)
    assert "bertil@example.org" not in parsed.text
    assert len(decoded) == 1 and decoded[0][0] < 1024


@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
def test_a_20_mb_inline_body_is_cut_before_it_is_decoded(
    cte: str, decoded: list[tuple[int, str]]
) -> None:
    msg = _mail()
    filler = "Mer text om ärendet, rad för rad.\n" * (TWENTY_MB // 36)
    msg.set_content(BODY + filler, cte=cte)
    raw = msg.as_bytes()
    assert len(raw) > TWENTY_MB
    parsed = parse(raw)
    assert parsed.subjects == ("alice@example.com",)
    assert parsed.assertion
    assert len(parsed.text.encode()) <= MAX_TEXT_BYTES
    # One decode, of a slice: never the 20 MB payload.
    assert len(decoded) == 1
    length, seen_cte = decoded[0]
    assert seen_cte == cte
    assert length <= 3 * MAX_TEXT_BYTES < TWENTY_MB // 10


def test_a_body_cut_mid_quantum_or_mid_escape_still_decodes() -> None:
    assert parse_module.transfer_decode("SGVq\nIG", "base64") == b"Hej "
    assert parse_module.transfer_decode("SGVqIQ", "base64") == b"Hej!"
    assert parse_module.transfer_decode("caf=C3=A9 =C", "quoted-printable") == b"caf\xc3\xa9 =C"
