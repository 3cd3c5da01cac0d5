"""Audit events name subjects by their request_subjects row, never in clear.

`redact` rewrites an event's detail before it is written: every address of
one of the request's subjects, wherever it stands (a value, a key such as
result["erase"]["anna@x.se"], or inside words quoted from the mail) becomes
"subject#<row id>". An address under a key that only ever holds subjects
but that is no longer a subject row (a subject an agent corrected away)
becomes "subject#removed". The event log then needs no change when a
request is minimised: the row it points to is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kundo_gdpr.identity import key
from kundo_gdpr.vocabulary import Kind

REMOVED = "subject#removed"
# Detail keys whose plain string values are only ever subjects' addresses.
SUBJECT_KEYS = frozenset({"subject", "subjects"})
# Detail keys whose dict keys are subjects' addresses (a request's result).
SUBJECT_MAPS = frozenset({Kind.ERASE, Kind.EXPORT, "mentions", "preview"})
_ADDRESS = re.compile(r"[^\s<>(),;:\"'\[\]]+@[^\s<>(),;:\"'\[\]]+")


def token(row_id: int) -> str:
    return f"subject#{row_id}"


def redact(detail: Any, tokens: Mapping[str, str], under: str | None = None) -> Any:
    """The detail with subjects' addresses replaced; `tokens` maps a normalised
    address to its token."""
    if isinstance(detail, dict):
        return {_name(k, tokens, under): redact(v, tokens, k) for k, v in detail.items()}
    if isinstance(detail, list | tuple):
        return [redact(v, tokens, under) for v in detail]
    if isinstance(detail, str):
        return _text(detail, tokens, under in SUBJECT_KEYS)
    return detail


def _name(name: Any, tokens: Mapping[str, str], under: str | None) -> Any:
    if not isinstance(name, str):
        return name
    return _text(name, tokens, under in SUBJECT_MAPS)


def _text(text: str, tokens: Mapping[str, str], only_subjects: bool) -> str:
    whole = key(text)
    if whole and whole in tokens:
        return tokens[whole]
    if only_subjects and whole and "@" in whole:
        return REMOVED

    def one(match: re.Match[str]) -> str:
        found = key(match.group(0))
        return tokens.get(found or "", match.group(0))

    return _ADDRESS.sub(one, text) if "@" in text else text


_TOKEN = re.compile(r"subject#\d+")


def reveal(detail: Any, addresses: Mapping[str, str]) -> Any:
    """For showing to agents: each "subject#<id>" the request still holds as its
    address (a minimised or removed subject stays a token)."""
    if isinstance(detail, dict):
        return {reveal(k, addresses): reveal(v, addresses) for k, v in detail.items()}
    if isinstance(detail, list | tuple):
        return [reveal(v, addresses) for v in detail]
    if isinstance(detail, str) and "subject#" in detail:
        return _TOKEN.sub(lambda m: addresses.get(m.group(0), m.group(0)), detail)
    return detail


def without_words(detail: Any) -> Any:
    """An event's detail with its findings' "words" (quoted from the mail) left out:
    events keep a finding's code, severity and other arguments, never mail text."""
    if not isinstance(detail, dict) or not isinstance(detail.get("findings"), list):
        return detail
    return {**detail, "findings": [_no_words(f) for f in detail["findings"]]}


def _no_words(finding: Any) -> Any:
    if not isinstance(finding, dict) or not isinstance(finding.get("args"), dict):
        return finding
    return {**finding, "args": {k: v for k, v in finding["args"].items() if k != "words"}}
