"""The web app's strings in Swedish and English, and which one a browser gets."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from aiohttp import web

from kundo_gdpr import i18n as shared_i18n

STRINGS = Path(__file__).parent / "templates" / "strings.toml"
LANGUAGES = ("sv", "en")
DEFAULT = "en"


@functools.cache
def strings(language: str) -> dict[str, str]:
    with STRINGS.open("rb") as handle:
        table: dict[str, dict[str, str]] = tomllib.load(handle)
    # Kinds' and channels' names are the replies' (mail_templates/<lang>/strings.toml),
    # under the keys the pages use (`kind_erase`, `channel_mail`).
    return {**table[language], **shared_i18n.names(language)}


def choose(request: web.Request) -> str:
    """?lang= first, then the lang cookie, then Accept-Language."""
    for given in (request.query.get("lang"), request.cookies.get("lang")):
        if given in LANGUAGES:
            return given
    ranked: list[tuple[float, str]] = []
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((q, tag.split("-")[0].lower()))
    for _q, tag in sorted(ranked, key=lambda r: -r[0]):
        if tag in LANGUAGES:
            return tag
    return DEFAULT


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def finding_text(language: str, code: str, args: dict[str, str | list[str]]) -> str:
    """A check's finding in plain words; an unknown code is shown as itself.

    The format strings are ours (strings.toml); only the arguments come from
    the mail, and the page escapes the result like any other text. A list
    argument is joined; entries that are reason codes ("dkim_unaligned:
    evil.example") are said in words from the `reason_*` strings.
    """
    table = strings(language)
    template = table.get(f"finding_{code}")
    if template is None:
        return table["finding_unknown"].format_map(_Blank(code=code))
    words = {
        # Reasons may carry commas of their own (an exception's text); names don't.
        key: ("; " if key == "reasons" else ", ").join(_reason(table, v) for v in value)
        if isinstance(value, list)
        else value
        for key, value in args.items()
    }
    return template.format_map(_Blank(words))


def _reason(table: dict[str, str], text: str) -> str:
    code, _, detail = text.partition(": ")
    template = table.get(f"reason_{code}")
    return template.format_map(_Blank(detail=detail)) if template else text
