"""Bytes in, a ParsedMail out. Pure: no database, no network, no clock.

The parser must never raise on hostile input; `parse` turns any internal
error into `ParseError`, which callers record against the stored mail.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import email.utils
import re
from email.headerregistry import Address
from email.message import EmailMessage, Message

from email_validator import EmailNotValidError, validate_email

from kundo_gdpr.intake import mime, normalise, phrases, quotes
from kundo_gdpr.intake.channels import read_channels
from kundo_gdpr.intake.html_text import html_to_text
from kundo_gdpr.intake.kinds import read_kinds
from kundo_gdpr.intake.mime import MAX_TEXT_BYTES, body_text, transfer_decode
from kundo_gdpr.intake.result import Doubt, ParsedMail

FORWARD_PREFIX = re.compile(r"^\s*(?:(?:re|sv|aw)\s*:\s*)*(?:fwd?|vb|wg)\s*:", re.IGNORECASE)
REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|sv|aw|fwd?|vb|wg)\s*:\s*)+", re.IGNORECASE)
# The lookbehinds make a match start only where a run of address characters
# starts, so a long run without "@" is scanned once, not once per character.
ADDRESS_LIKE = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*"
)
MAX_HEADER_WORDS = 4
FORWARDED_FROM = re.compile(r"^[ \t]*\*?(?:From|Från)\*?[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)

AUTO_SUBJECTS = re.compile(
    r"^\s*(?:" + "|".join(re.escape(s) for s in phrases.AUTO_REPLY_SUBJECTS) + ")", re.IGNORECASE
)
MACHINE_SENDERS = re.compile(
    r"^(?:" + "|".join(re.escape(n) for n in phrases.MACHINE_SENDER_NAMES) + ")@", re.IGNORECASE
)


class ParseError(Exception):
    """The mail could not be read at all; the reason is the message."""


def parse(raw: bytes, support_addresses: tuple[str, ...] = ()) -> ParsedMail:
    """Read one request mail. Raises ParseError only when nothing is readable."""
    if not raw.strip():
        raise ParseError("empty message")
    try:
        # Headers get the modern policy (decoded words, parsed addresses); the
        # MIME tree gets compat32, which does not build a header object for every
        # part and so stays fast on mail with thousands of parts.
        headers = mime.header_text(raw)
        head = email.parser.HeaderParser(policy=email.policy.default).parsestr(headers)
        tree = email.message_from_bytes(raw, policy=email.policy.compat32)
        return _parse(head, tree, tuple(a.lower() for a in support_addresses))
    except ParseError:
        raise
    except Exception as exc:  # hostile MIME can break the stdlib in many ways
        raise ParseError(f"{type(exc).__name__}: {exc}") from exc


def _parse(msg: Message, tree: Message, support: tuple[str, ...]) -> ParsedMail:
    problems: list[str] = []
    sender, sender_name = _sender(msg)
    if sender is None:
        problems.append("bad_sender")
    subject_line = normalise.text(_header(msg, "Subject"))
    forwarded = bool(FORWARD_PREFIX.match(subject_line))
    body = normalise.text(body_text(tree, keep_quotes=forwarded))
    new, forwarded_block = quotes.new_text(body, forwarded)
    # A forwarded mail's sender is a candidate subject: the first From of an
    # inline forward, and the From of each mail forwarded as an attachment.
    forwarded_from = FORWARDED_FROM.search(forwarded_block)
    forwarded_senders = [m.group(0) for m in ADDRESS_LIKE.finditer(
        normalise.text(forwarded_from.group(1)) if forwarded_from else "")]
    for attached in mime.forwarded_mails(tree):
        forwarded_senders += mime.senders(attached)
    unsigned = quotes.without_signature(new, phrases.REQUEST_PATTERN, sender_name)
    assertion = has_assertion(new)
    topic = REPLY_PREFIX.sub("", subject_line)
    reading = read_kinds(topic + "\n\n" + unsigned)
    kinds = reading.kinds
    doubts = [Doubt("kind_doubt", words) for words in reading.doubts]
    channels, widened = read_channels(_without_addresses(topic + "\n" + unsigned))
    excluded = {*support, *([sender] if sender else [])}
    own_domain = sender.rpartition("@")[2] if sender else None
    subjects, invalid, staff = _subjects(unsigned, forwarded_senders, excluded, own_domain)
    doubts += staff
    if is_machine_mail(msg, sender, tree):
        problems.append("auto_reply")
    if not assertion:
        problems.append("missing_assertion")
    if not kinds:
        problems.append("no_kind")
    if not channels:
        problems.append("no_channel")
    if widened:
        problems.append("channels_widened")
    if invalid:
        problems.append("invalid_subject")
    if not subjects:
        problems.append("no_subject")
    return ParsedMail(
        message_id=_header(msg, "Message-ID").strip() or None,
        sender=sender,
        sender_name=sender_name,
        subject_line=subject_line,
        language=language_of(new or subject_line),
        kinds=kinds,
        subjects=subjects,
        channels=channels,
        assertion=assertion,
        problems=tuple(problems),
        text=new,
        invalid_subjects=invalid,
        in_reply_to=_header(msg, "In-Reply-To").strip() or None,
        references=tuple(_header(msg, "References").split()),
        reply_to=_header(msg, "Reply-To").strip() or None,
        attachments=tuple(mime.attachments(tree)),
        doubts=tuple(doubts),
    )


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the policy cannot parse is treated as absent
        return ""
    return "" if value is None else str(value)


def _sender(msg: Message) -> tuple[str | None, str | None]:
    """The one From address, or None unless it is unambiguous.

    Python 3.11 has no `getaddresses(strict=True)` (CVE-2023-27043), so a From
    counts only when two independent parsers agree on exactly one address and
    the modern one found nothing wrong: any defect, a group, a second address
    or a display name naming another address makes the sender unknown.
    """
    try:
        values = msg.get_all("From") or []
    except Exception:
        return None, None
    if len(values) != 1:
        return None, None
    header = values[0]
    if getattr(header, "defects", ()) or any(
        g.display_name is not None for g in getattr(header, "groups", ())
    ):
        return None, None
    addresses: tuple[Address, ...] = tuple(getattr(header, "addresses", ()))
    if len(addresses) != 1:
        return None, None
    address: Address = addresses[0]
    if not _clean_addr_spec(address):
        return None, None
    if not _legacy_parse_agrees(str(header), address.addr_spec):
        return None, None
    display = address.display_name or None
    # A display name that is itself another address is a spoofing classic.
    for named in ADDRESS_LIKE.finditer(display or ""):
        if named.group(0).lower() != address.addr_spec.lower():
            return None, None
    return address.addr_spec.lower(), display


def _clean_addr_spec(address: Address) -> bool:
    """A dot-atom local part and a domain: no quoted "@" or "<" hiding inside."""
    local, domain = address.username, address.domain
    if not local or not domain or address.addr_spec.startswith('"'):
        return False
    return not any(ch in local + domain for ch in '@<>()," \\')


def _legacy_parse_agrees(value: str, addr_spec: str) -> bool:
    """Whether `email.utils.getaddresses` reads the same single address.

    The two parsers disagree on exactly the forms CVE-2023-27043 is about
    (`a@b)<c@d>`, `a@b(<c@d>`); disagreement means we cannot know the sender.
    """
    found = [a for name, a in email.utils.getaddresses([value]) if a or name]
    return len(found) == 1 and found[0].lower() == addr_spec.lower()


def normalise_sentence(text: str) -> str:
    text = text.casefold().replace("’", "'").replace("‘", "'")
    return re.sub(r"\s+", " ", text)


def has_assertion(text: str) -> bool:
    flat = normalise_sentence(text)
    return any(sentence in flat for sentence in phrases.ASSERTIONS)


def _without_addresses(text: str) -> str:
    """`text` without addresses, address phrases and column headers: a channel
    word there names an address ("Name  Email" over a list of customers)."""
    lines = text.splitlines()
    kept = [
        "" if _column_header(line, lines[i + 1 :]) else line for i, line in enumerate(lines)
    ]
    return phrases.NOT_CHANNEL_PATTERN.sub(" ", ADDRESS_LIKE.sub(" ", "\n".join(kept)))


def _column_header(line: str, rest: list[str]) -> bool:
    """A short line of bare words (no punctuation, no kind word) whose next
    non-empty line holds an address: a table's or list's header row."""
    words = line.split()
    if not 1 <= len(words) <= MAX_HEADER_WORDS or not all(w.isalpha() or "-" in w for w in words):
        return False
    if phrases.REQUEST_KIND_PATTERN.search(line):
        return False
    following = next((r for r in rest if r.strip()), "")
    return ADDRESS_LIKE.search(following) is not None


def _subjects(
    text: str, forwarded_senders: list[str], excluded: set[str], own_domain: str | None
) -> tuple[tuple[str, ...], tuple[str, ...], list[Doubt]]:
    """Valid and invalid subject addresses, and the staff-like ones the text names.

    Role addresses (dpo@, info@, ...) and addresses at the sender's own domain
    are colleagues and functions, not customers: left out, unless their line
    names them as the person ("radera kunden info@..."), and then a doubt.
    """
    candidates = [(m.group(0), _line_at(text, m.start())) for m in ADDRESS_LIKE.finditer(text)]
    candidates += [(address, "") for address in forwarded_senders]
    valid: list[str] = []
    invalid: list[str] = []
    staff: list[Doubt] = []
    for candidate, line in candidates:
        address = normalise.address(candidate)
        if address in excluded or address in valid or address in invalid:
            continue
        if _staff_like(address, own_domain):
            if not phrases.PERSON_PATTERN.search(ADDRESS_LIKE.sub(" ", line)):
                continue
            staff.append(Doubt("subject_is_staff", line.strip(), address))
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            invalid.append(address)
            continue
        valid.append(address)
    return tuple(valid), tuple(invalid), staff


def _staff_like(address: str, own_domain: str | None) -> bool:
    local, _, domain = address.rpartition("@")
    if local in phrases.ROLE_LOCAL_PARTS:
        return True
    return domain == own_domain and domain not in phrases.FREEMAIL_DOMAINS


def _line_at(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start : end if end >= 0 else len(text)]


def language_of(text: str) -> str:
    words = re.findall(r"[a-zåäöé']+", text.lower())
    swedish = sum(1 for w in words if w in phrases.SWEDISH_WORDS)
    english = sum(1 for w in words if w in phrases.ENGLISH_WORDS)
    if re.search(r"[åäö]", text.lower()):
        swedish += 2
    return "sv" if swedish >= english and swedish > 0 else "en"


def is_machine_mail(msg: Message, sender: str | None, tree: Message | None = None) -> bool:
    """Bounces, auto-replies, lists: stored, never answered.

    `tree` is the full MIME tree when `msg` holds only the headers.
    """
    auto = _header(msg, "Auto-Submitted").strip().lower()
    if auto and auto != phrases.AUTO_SUBMITTED_HUMAN:
        return True
    if _header(msg, "Precedence").strip().lower() in phrases.PRECEDENCE_MACHINE:
        return True
    if any(_header(msg, h) for h in (*phrases.AUTOREPLY_HEADERS, *phrases.LIST_HEADERS)):
        return True
    if sender and MACHINE_SENDERS.match(sender):
        return True
    if _header(msg, "Return-Path").strip() == "<>":
        return True
    if any(part.get_content_type() in phrases.REPORT_TYPES for part in mime.walk(tree or msg)):
        return True
    return bool(AUTO_SUBJECTS.match(_header(msg, "Subject")))


__all__ = [
    "MAX_TEXT_BYTES",
    "EmailMessage",
    "ParseError",
    "ParsedMail",
    "body_text",
    "html_to_text",
    "parse",
    "transfer_decode",
]
