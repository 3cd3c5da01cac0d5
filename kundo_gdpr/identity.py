"""Who a data subject is: one normalised form of an address.

Every owner column of the reference desk (forum author, mail customer,
mail sender and recipient, chat visitor and chat sender) has a maintained
`*_key` column holding `key(address)`, indexed; lookup, preview, erase and
export all match `key(subject)` against those columns and nothing else, so
" ANNA@x.se\t", "<anna@x.se>" and "Anna Svensson <anna@x.se>" are the same
person everywhere, and the match stays an index lookup.

The keys are set by the models when an address is assigned (ORM), and
`kundo_gdpr.desk.keys.catch_up` fills in, set-based, any row written without
one (raw SQL from the host desk, or an address changed under a database
trigger that cleared the key, see migration 0006), before anything is matched.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, false

# The key of a value that holds no single address (garbage, or nothing):
# stored so the row is not normalised again, never equal to a subject's key.
NONE = ""
# The key of a recipient list naming several people: nobody's alone.
SEVERAL = "*"
KEY_LENGTH = 320

_EDGES = re.compile(r"^[\s\x00-\x1f\x7f\"']+|[\s\x00-\x1f\x7f\"']+$")
_ADDRESS = re.compile(r"^[^\s@<>(),;:\"\\\x00-\x1f\x7f]+@[^\s@<>(),;:\"\\\x00-\x1f\x7f]+$")
_COMMENT = re.compile(r"\s*\([^()]*\)\s*$")
_LONGEST = 4 * KEY_LENGTH  # a display name and an address fit; 10 kB of text does not


def key(raw: str | bytes | None) -> str | None:
    """The normalised form of one address as written in an owner column.

    Trimmed (spaces, tabs, line breaks, NULs, quotes), `mailto:`, angle
    brackets, a display name and a trailing comment removed, case-folded,
    the domain's IDN form made ASCII (punycode). A recipient list with two
    different people is `SEVERAL`; anything else that is not one address
    is `NONE`. Never raises, whatever the bytes.
    """
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = _EDGES.sub("", text)
    if not text or len(text) > _LONGEST:
        return NONE
    parts = [p for p in re.split(r"[,;]", text) if "@" in p]
    if len(parts) > 1 and not ("<" in text and text.count("@") == 1):
        keys = {_one(p) for p in parts} - {NONE}
        return keys.pop() if len(keys) == 1 else (SEVERAL if keys else NONE)
    return _one(text)


def _one(text: str) -> str:
    text = _EDGES.sub("", text)
    if "<" in text:
        inner = text[text.rindex("<") + 1:]
        text = inner.split(">", 1)[0]
    else:
        text = _COMMENT.sub("", text)
    text = _EDGES.sub("", text)
    if text[:7].lower() == "mailto:":
        text = text[7:]
    if not _ADDRESS.match(text):
        return NONE
    local, domain = text.rsplit("@", 1)
    domain = _domain(domain.rstrip("."))
    found = f"{local.casefold()}@{domain}"
    return found if domain and len(found) <= KEY_LENGTH else NONE


def _domain(domain: str) -> str:
    folded = domain.casefold()
    if folded.isascii():
        return folded
    try:
        return folded.encode("idna").decode("ascii")
    except UnicodeError:
        return folded


def unicode_domain(address: str) -> str | None:
    """The address with its punycode domain written in Unicode, if it has one."""
    local, _, domain = address.rpartition("@")
    if "xn--" not in domain:
        return None
    try:
        return f"{local}@{domain.encode('ascii').decode('idna')}"
    except UnicodeError:
        return None


def matches(column: Any, subject_key: str | None) -> ColumnElement[bool]:
    """`column` (a key column) is this subject's; nothing matches a non-address."""
    if not subject_key or subject_key == SEVERAL:
        return false()
    return column == subject_key  # type: ignore[no-any-return]


def subject_key(subject: str) -> str | None:
    """The key a request's subject is matched by (None: matches nothing)."""
    found = key(subject)
    return found if found and found != SEVERAL else None


def plus_variant(local_and_domain: str) -> tuple[str, str] | None:
    """(LIKE prefix, domain suffix) of the subject's `+tag` variants, e.g.
    ("anna+", "@x.se") for anna@x.se; None when the address has no local part."""
    local, _, domain = local_and_domain.rpartition("@")
    if not local or "+" in local:
        return None
    return f"{local}+", f"@{domain}"
