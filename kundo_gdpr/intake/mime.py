"""MIME decoding: which part holds the text, its bytes, its charset, forwarded mails.

Pure and lenient: hostile structure gives less text, never an exception the
caller has to know about (the parser turns any that slip through into
ParseError).
"""

from __future__ import annotations

import binascii
import codecs
import email.header
import email.utils
import quopri
import re
from collections.abc import Iterator
from email.message import Message

from kundo_gdpr.intake.html_text import html_to_text
from kundo_gdpr.intake.result import AttachmentInfo

HEADER_END = re.compile(rb"\r?\n\r?\n")
FALLBACK_CHARSETS = ("utf-8", "windows-1252")
# Declared as one of these, bytes 0x80-0x9F are windows-1252's letters and
# quotes (what Outlook and Windows send), never ISO 8859-1's control codes.
LATIN1_NAMES = frozenset({"latin-1", "iso8859-1", "ascii", "cp1252"})
C1_BYTES = re.compile(rb"[\x80-\x9f]")
# Text parts larger than this are cut before decoding; no request is this long.
MAX_TEXT_BYTES = 512 * 1024
FORWARDED_TYPES = frozenset({"message/rfc822", "message/global"})


def header_text(raw: bytes) -> str:
    """The header block as text: raw UTF-8 (RFC 6532) read as UTF-8.

    Bytes that are not UTF-8 stay surrogate escapes, which the modern policy
    reports as defects, exactly as when it reads the bytes itself.
    """
    end = HEADER_END.search(raw)
    block = raw[: end.start()] if end else raw
    return block.decode("utf-8", "surrogateescape") + "\n\n"


def walk(msg: Message) -> Iterator[Message]:
    """Every part of this message, but not the parts of a mail forwarded inside it."""
    stack = [msg]
    while stack:
        part = stack.pop()
        yield part
        if part.get_content_type() in FORWARDED_TYPES and part is not msg:
            continue
        # Never get_payload() on a leaf: it would decode the whole body.
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(p for p in reversed(payload) if isinstance(p, Message))


def body_text(msg: Message, keep_quotes: bool = False) -> str:
    """The plain text of the message: text/plain preferred, else HTML as text.

    HTML quote containers are dropped unless `keep_quotes` (a forward, whose
    quoted block names the data subject).
    """
    plain = _first_part(msg, "text/plain")
    if plain is not None:
        return decode(plain)
    markup = _first_part(msg, "text/html")
    if markup is not None:
        return html_to_text(decode(markup), keep_quotes)
    return ""


def forwarded_mails(msg: Message) -> list[Message]:
    """Mails forwarded as attachments (Outlook's "Forward as attachment")."""
    found: list[Message] = []
    for part in walk(msg):
        if part is msg or part.get_content_type() not in FORWARDED_TYPES:
            continue
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            found.append(payload[0])
    return found


def senders(msg: Message) -> list[str]:
    """The addresses in a (forwarded) mail's From, RFC 2047 words decoded."""
    values = [str(v) for v in msg.get_all("From") or []]
    return [address for _, address in email.utils.getaddresses(values) if "@" in address]


def _first_part(msg: Message, content_type: str) -> Message | None:
    for part in walk(msg):
        if part.is_multipart() or part.get_content_type() != content_type:
            continue
        if (part.get_content_disposition() or "inline") == "attachment":
            continue
        return part
    return None


def decode(part: Message) -> str:
    """The part's text, from at most MAX_TEXT_BYTES of its content.

    The encoded payload is cut *before* it is transfer-decoded, so a 20 MB
    body costs no more than a short one; attachments never get here at all.
    """
    # The stored payload as parsed: `get_payload()` would already re-decode
    # 8-bit text with the declared charset, and `decode=True` decodes it all.
    payload = getattr(part, "_payload", None)
    if not isinstance(payload, str):
        return ""
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    data = transfer_decode(payload[: _encoded_limit(cte)], cte)[:MAX_TEXT_BYTES]
    for charset in charsets(part.get_content_charset(), data):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def charsets(declared: str | None, data: bytes) -> list[str]:
    """The charsets to try, in order, for `data` declared as `declared`."""
    try:
        name = codecs.lookup(declared).name if declared else ""
    except LookupError:
        name = ""
    if name in LATIN1_NAMES and (name == "ascii" or C1_BYTES.search(data)):
        # US-ASCII with 8-bit bytes is UTF-8 or windows-1252 mislabelled; ISO
        # 8859-1 with 0x80-0x9F is windows-1252 (as the WHATWG encoding spec says).
        return [*FALLBACK_CHARSETS, "iso-8859-1"]
    return [c for c in (name, *FALLBACK_CHARSETS, "iso-8859-1") if c]


def _encoded_limit(cte: str) -> int:
    """Encoded characters enough for MAX_TEXT_BYTES of content (line breaks included)."""
    return MAX_TEXT_BYTES * {"base64": 2, "quoted-printable": 3}.get(cte, 1)


def transfer_decode(encoded: str, cte: str) -> bytes:
    """Undo a Content-Transfer-Encoding, leniently. The parser's only decode step.

    `encoded` is compat32's payload: ASCII, with any 8-bit bytes kept as
    surrogate escapes, so encoding it back gives the bytes on the wire.
    """
    wire = encoded.encode("utf-8", "surrogateescape")
    if cte == "base64":
        return _base64(wire)
    if cte == "quoted-printable":
        return quopri.decodestring(wire)
    return wire


def _base64(wire: bytes) -> bytes:
    # Only alphabet characters count; a payload cut mid-quantum is padded so
    # that decoding never fails on a slice or on a sloppy sender's padding.
    chars = re.sub(rb"[^A-Za-z0-9+/]", b"", wire)
    rest = len(chars) % 4
    chars = chars[: len(chars) - 1] if rest == 1 else chars + b"=" * ((4 - rest) % 4)
    return binascii.a2b_base64(chars)


def attachments(msg: Message) -> list[AttachmentInfo]:
    found: list[AttachmentInfo] = []
    for part in walk(msg):
        forwarded = part is not msg and part.get_content_type() in FORWARDED_TYPES
        if part.is_multipart() and not forwarded:
            continue
        if part.get_content_disposition() != "attachment" and not forwarded:
            continue
        payload = getattr(part, "_payload", None)
        size = len(payload) if isinstance(payload, str) else 0
        found.append(AttachmentInfo(_filename(part), part.get_content_type(), size))
    return found


def _filename(part: Message) -> str | None:
    """The attachment's name, RFC 2047 words decoded (compat32 leaves them encoded)."""
    name = part.get_filename()
    if not name:
        return None
    try:
        return str(email.header.make_header(email.header.decode_header(name)))
    except Exception:  # a broken encoded word: show it as written
        return name
