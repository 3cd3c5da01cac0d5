"""Replies as templates: one Jinja2 file per reply and language.

Each template defines `{% block subject %}` and `{% block body %}`;
`make_message` renders both into a complete EmailMessage.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import jinja2

from kundo_gdpr import i18n
from kundo_gdpr.i18n import LANGUAGES, TEMPLATES
from kundo_gdpr.models import utcnow
from kundo_gdpr.vocabulary import CHANNELS, KINDS, ChannelKind, Kind


@dataclass(frozen=True)
class FileAttachment:
    filename: str
    content_type: str
    data: bytes


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # plain-text mail; nothing here is ever HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # Counted sentences with each language's plural forms (kundo_gdpr.i18n); the
    # templates name their language, so _common's macros can use them too.
    env.globals["erase_sentence"] = i18n.erase_sentence
    env.globals["export_sentence"] = i18n.export_sentence
    env.globals["counted"] = i18n.counted
    # Kinds and channels: the words (kundo_gdpr.vocabulary) and their names (strings.toml).
    env.globals.update(Kind=Kind, ChannelKind=ChannelKind, KINDS=KINDS, CHANNELS=CHANNELS,
                       kind_name=i18n.kind_name, channel_name=i18n.channel_name)
    return env


def render(name: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of template `name` in `language`."""
    language = language if language in LANGUAGES else "en"
    env = environment()
    template = env.get_template(f"{language}/{name}.txt")
    # Shared macros (names of kinds and channels, problem explanations) as `c`.
    common = env.get_template(f"{language}/_common.txt").module
    ctx = template.new_context({**context, "c": common})
    subject = "".join(template.blocks["subject"](ctx)).strip()
    body = "".join(template.blocks["body"](ctx)).strip() + "\n"
    return " ".join(subject.split()), body


def new_message_id(purpose: str, domain: str) -> str:
    """A unique Message-ID that sorts by time and whose header never folds.

    `purpose` is "REFERENCE.reply-kind", e.g. "GDPR-2026-00001.receipt".
    The microsecond time in base 36 comes first so that the outbox folder's
    file names sort in the order the replies were written; the purpose comes
    last, where people and tests look for it.

    A value of 67-77 characters does not fit beside "Message-ID: " in 78
    columns but does on a line of its own, so the header gets folded, and
    receivers that keep the folding whitespace (Python's parser among them)
    read it back with a leading space: it no longer matches ours. So when the
    purpose would make it that long, only the reference is kept (the outbox
    row has the purpose anyway). With the default domain it always fits.
    """
    stamp = f"{_base36(time.time_ns() // 1000)}.{secrets.token_hex(4)}"
    for tail in (purpose, purpose.split(".", 1)[0]):
        message_id = f"<{stamp}.{tail}@{domain}>"
        if len(message_id) <= MAX_UNFOLDED_ID:
            return message_id
    return message_id


# 78 columns minus len("Message-ID: ").
MAX_UNFOLDED_ID = 66


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


@dataclass(frozen=True)
class Envelope:
    """Who a reply is from and to, and which mail it answers."""

    from_addr: str
    from_name: str
    to_addr: str
    message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


def make_message(
    name: str,
    language: str,
    envelope: Envelope,
    context: dict[str, Any],
    attachments: Sequence[FileAttachment] = (),
) -> EmailMessage:
    subject, body = render(name, language, context)
    msg = EmailMessage()
    msg["From"] = formataddr((envelope.from_name, envelope.from_addr))
    msg["To"] = envelope.to_addr
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = envelope.message_id
    if envelope.in_reply_to:
        msg["In-Reply-To"] = envelope.in_reply_to
        msg["References"] = " ".join([*envelope.references, envelope.in_reply_to])
    # RFC 3834: tells other robots not to answer us, which prevents loops.
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(body, charset="utf-8")
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    # Last: set_content() clears every Content-* header, and add_attachment() moves
    # them into the first part, so set before either it would be lost (RFC 3282).
    msg["Content-Language"] = language
    return msg
