"""The ways a subject's address is written in other people's texts.

Plain in any case; with the `@` URL-encoded (`%40`), as an HTML character
reference (`&#64;`, `&#x40;`, zero-padded too), or quoted-printable (`=40`);
an IDN domain as punycode or in Unicode. Each is found and replaced alike.
"""

from __future__ import annotations

import re

from kundo_gdpr.identity import unicode_domain

# The `@` as written: plain, %40, &#64; / &#064;, &#x40; / &#X040;, =40.
AT = r"(?:@|%40|&\#0*64;|&\#[xX]0*40;|=40)"


def domains(address: str) -> list[str]:
    """The domain as stored (punycode for an IDN) and, if it differs, in Unicode."""
    found = [address.rpartition("@")[2]]
    if (unicode := unicode_domain(address)) is not None:
        found.append(unicode.rpartition("@")[2])
    return found


def like_patterns(address: str) -> list[str]:
    """LIKE patterns (escape "\\") that every written form of the address matches:
    the local part, then the domain. One per domain form instead of one per
    form of the `@`: the index search reads a fifth as much; the exact
    pattern sorts out the few rows that only look alike."""
    local = _escape(address.rpartition("@")[0])
    return [f"%{local}%{_escape(domain)}%" for domain in domains(address)]


def fts_terms(address: str) -> list[str] | None:
    """The same, as FTS5 trigram query terms ("local" AND "domain"); None when a
    part is too short for trigrams (it would match nothing)."""
    local = address.rpartition("@")[0]
    if len(local) < 3 or any(len(d) < 3 for d in domains(address)):
        return None
    return [f"({phrase(local)} AND {phrase(domain)})" for domain in domains(address)]


def phrase(text: str) -> str:
    """One quoted FTS5 phrase (a quote inside doubled): never read as syntax."""
    return '"' + text.replace('"', '""') + '"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def address_pattern(address: str) -> re.Pattern[str]:
    """The address in any written form and any case, not part of a longer address."""
    local, _, _domain = address.rpartition("@")
    if not local:
        return re.compile(r"(?!x)x")  # matches nothing
    domain = "|".join(re.escape(d) for d in domains(address))
    return re.compile(rf"(?<![\w.+-]){re.escape(local)}{AT}(?:{domain})(?![\w-]|\.\w)",
                      re.IGNORECASE)
