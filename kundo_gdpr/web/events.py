"""The audit trail in words: each event's title and detail lines, no codes, no JSON.

The words are `event_*` and `detail_*` strings in strings.toml; values that are
codes themselves (kinds, channels, states, reply purposes, findings) are said
in words too. Technical keys (message ids, row ids, sizes) are left out: the
CLI's `requests show` still has them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kundo_gdpr import i18n as shared
from kundo_gdpr.vocabulary import Kind
from kundo_gdpr.web.i18n import finding_text, strings


def describe(language: str, action: str, detail: dict[str, Any]) -> dict[str, Any]:
    table = strings(language)
    title = table.get(f"event_{action}") or table["event_other"].format(
        what=action.replace("_", " "))
    lines = []
    for key, value in detail.items():
        say = _SAYERS.get(key)
        if say is None or value in (None, "", [], {}):
            continue
        coded = _REASON_WORDS.get(action) if key == "reason" else None
        words = (table.get(f"{coded}{value}", str(value)) if coded
                 else say(language, table, value))
        if words:
            lines.append(table[f"detail_{key}"].format(value=words))
    return {"title": title, "lines": lines}


def _words(prefix: str) -> Callable[[str, dict[str, str], Any], str]:
    def say(language: str, table: dict[str, str], value: Any) -> str:
        values = value if isinstance(value, list) else [value]
        return ", ".join(table.get(f"{prefix}{v}", str(v)) for v in values)
    return say


def _text(language: str, table: dict[str, str], value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _date(language: str, table: dict[str, str], value: Any) -> str:
    return str(value)[:16].replace("T", " ")


def _findings(language: str, table: dict[str, str], value: Any) -> str:
    if not value:
        return table["no_findings"]
    return " ".join(finding_text(language, f.get("code", ""), _args(f)) for f in value)


def _args(finding: dict[str, Any]) -> dict[str, str | list[str]]:
    return {k: [str(x) for x in v] if isinstance(v, list) else str(v)
            for k, v in (finding.get("args") or {}).items()}


def _fields(language: str, table: dict[str, str], value: Any) -> str:
    """A correction's before/after: subjects, kinds, channels."""
    parts = [
        ", ".join(value.get("subjects", [])),
        _words("kind_")(language, table, value.get("kinds", [])),
        _words("channel_")(language, table, value.get("channels", [])),
    ]
    return "; ".join(p for p in parts if p)


def _result(language: str, table: dict[str, str], value: Any) -> str:
    said = []
    for subject, by_channel in value.get(Kind.ERASE, {}).items():
        for channel, items in by_channel.items():
            sentence = shared.erase_sentence(language, items, "past")
            if sentence:
                said.append(f"{subject}, {table.get('channel_' + channel, channel)}: {sentence}.")
    for subject, by_channel in value.get(Kind.EXPORT, {}).items():
        sentence = shared.export_sentence(language, by_channel)
        said.append(table["export_held"].format(items=sentence) if sentence
                    else table["export_empty"])
        said[-1] = f"{subject}: {said[-1]}"
    return " ".join(said)


def _yes_no(language: str, table: dict[str, str], value: Any) -> str:
    return table["yes"] if value else table["no"]


def _problems(language: str, table: dict[str, str], value: Any) -> str:
    return " ".join(finding_text(language, str(code), {}) for code in value)


def _count(language: str, table: dict[str, str], value: Any) -> str:
    return str(value)


# Events whose `reason` is a code of ours (not an agent's words), and the strings
# that say it.
_REASON_WORDS = {"undo_refused": "error_undo_", "export_download_refused": "download_"}

_SAYERS: dict[str, Callable[[str, dict[str, str], Any], str]] = {
    "subjects": _text,
    "kinds": _words("kind_"),
    "channels": _words("channel_"),
    "channel_kinds": _words("channel_"),
    "state": _words("state_"),
    "purpose": _words("purpose_"),
    "via": _words("via_"),
    "reason": _text,
    "to": _text,
    "first": _text,
    "agent": _text,
    "filename": _text,
    "error": _text,
    "until": _date,
    "extended_until": _date,
    "expires_at": _date,
    "months": _count,
    "sessions": _count,
    "sessions_ended": _count,
    "attempt": _count,
    "findings": _findings,
    "before": _fields,
    "after": _fields,
    "result": _result,
    "language": _words("language_"),
    "sender": _text,
    "assertion": _yes_no,
    "problems": _problems,
}
