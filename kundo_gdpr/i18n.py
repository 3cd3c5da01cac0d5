"""Short user-facing strings (sheet names, column headers, markers, counted
phrases) per language, and the plural rule of each language.

Longer text lives in Jinja2 templates; both sit in mail_templates/<lang>/ so
that a translator edits one folder.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kundo_gdpr.vocabulary import CHANNELS, KINDS

TEMPLATES = Path(__file__).resolve().parent.parent / "mail_templates"
LANGUAGES = ("sv", "en")


def _one_other(n: int) -> str:
    return "one" if abs(n) == 1 else "other"


# CLDR plural categories for cardinals. Swedish and English both have "one"
# (exactly 1, no decimals) and "other"; a language with more forms (Polish,
# Finnish's none, Arabic) adds its rule here and its forms in strings.toml.
PLURAL_RULES: dict[str, Callable[[int], str]] = {"sv": _one_other, "en": _one_other}


@functools.cache
def strings(language: str) -> dict[str, Any]:
    if language not in LANGUAGES:
        language = "en"
    with (TEMPLATES / language / "strings.toml").open("rb") as handle:
        return tomllib.load(handle)


def text(language: str, key: str) -> str:
    """One string; a missing key is a bug, so it raises KeyError."""
    value = strings(language)
    for part in key.split("."):
        value = value[part]
    return str(value)


def kind_name(language: str, kind: str) -> str:
    """What a request asks for, in words: "radering", "erasure"."""
    return text(language, f"kinds.{kind}")


def channel_name(language: str, channel: str, definite: bool = False) -> str:
    """A channel kind in words: "e-post"; definite for "i forumet", "in the forum"."""
    return text(language, f"{'channels_definite' if definite else 'channels'}.{channel}")


def names(language: str) -> dict[str, str]:
    """Every kind's and channel's name as `kind_erase`, `channel_mail`: the web
    pages' keys for them, read from the one file that holds them."""
    return {**{f"kind_{k}": kind_name(language, k) for k in KINDS},
            **{f"channel_{c}": channel_name(language, c) for c in CHANNELS}}


def plural(language: str, n: int, forms: Mapping[str, str]) -> str:
    """The form of `forms` ({"one": …, "other": …}) for n, with {n} filled in."""
    category = PLURAL_RULES.get(language, _one_other)(n)
    return forms.get(category, forms["other"]).format(n=n)


def counted(language: str, key: str, n: int) -> str:
    """A counted phrase from [counts], e.g. counted("en", "future.posts", 3)."""
    forms: Any = strings(language)["counts"]
    for part in key.split("."):
        forms = forms[part]
    return plural(language, n, forms)


def join(language: str, phrases: list[str]) -> str:
    """"a, b and c" in the language's words."""
    if len(phrases) <= 1:
        return "".join(phrases)
    word = strings(language)["counts"]["words"]["and"]
    return f"{', '.join(phrases[:-1])} {word} {phrases[-1]}"


def erase_sentence(language: str, items: Mapping[str, int], tense: str) -> str:
    """One channel's erase counts as one sentence without its zero items:
    "3 posts were deleted and 1 post was anonymised because …". Empty when all are 0."""
    phrases = [counted(language, f"{tense}.{name}", n) for name, n in items.items()
               if n and name in strings(language)["counts"][tense]]
    return join(language, phrases)


def export_sentence(language: str, by_channel: Mapping[str, int]) -> str:
    """An export's rows per channel: "5 email messages and 1 forum post"."""
    return join(language, [counted(language, f"export.{channel}", n)
                           for channel, n in by_channel.items() if n])
