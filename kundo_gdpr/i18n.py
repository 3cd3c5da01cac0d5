"""Short user-facing strings (sheet names, column headers, markers) per language.

Longer text lives in Jinja2 templates; both sit in mail_templates/<lang>/ so
that a translator edits one folder.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "mail_templates"
LANGUAGES = ("sv", "en")


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
