"""HTML bodies as plain text, for mail that has no text/plain part.

Every pattern here runs in linear time on hostile markup: attribute runs stop at
the next `<` or `>`, and elements are cut with `str.find`, never `.*?`, so an
unclosed tag repeated a hundred thousand times cannot hang the parser.
"""

from __future__ import annotations

import html
import re

# Containers that hold the message being replied to (Gmail, Outlook, Apple, Yahoo, Thunderbird).
QUOTE_CONTAINER_MARKERS: tuple[str, ...] = (
    "gmail_quote",  # Gmail
    "divRplyFwdMsg",  # Outlook (web and desktop)
    "OutlookMessageHeader",  # older Outlook
    "appendonsend",  # Outlook: everything after our own text
    "moz-cite-prefix",  # Thunderbird
    "yahoo_quoted",  # Yahoo
)
# `type="cite"` is Apple Mail's (and Thunderbird's) blockquote.
QUOTE_MARKERS = re.compile(
    r"type\s*=\s*[\"']?cite|" + "|".join(QUOTE_CONTAINER_MARKERS), re.IGNORECASE
)
CONTAINER = re.compile(r"<(?:blockquote|div)\b[^<>]*>", re.IGNORECASE)
DROPPED_START = re.compile(r"<(script|style|head)\b", re.IGNORECASE)
BLOCK_TAGS = re.compile(
    r"<\s*(?:br|/p|p|/div|div|/li|li|/tr|tr|/h\d|/blockquote)\b[^<>]*>", re.IGNORECASE
)
MAILTO = re.compile(
    r"<a\b[^<>]*?href\s*=\s*[\"']?mailto:([^\"'<>?\s]+)[^<>]*>[^<]*(?:</a\s*>)?", re.IGNORECASE
)
TAG = re.compile(r"<[^<>]*>")
BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*(?:\n[ \t\r\f\v]*)+")


def html_to_text(markup: str, keep_quotes: bool = False) -> str:
    """Plain text of an HTML body, with quoted containers removed unless `keep_quotes`."""
    text = _without_dropped_elements(markup)
    if not keep_quotes:
        text = _before_first_quote(text)
    text = MAILTO.sub(lambda m: " " + m.group(1) + " ", text)
    text = BLOCK_TAGS.sub("\n", text)
    text = TAG.sub("", text)
    text = html.unescape(text).replace("\xa0", " ")
    return BLANK_LINES.sub("\n\n", text).strip()


def _without_dropped_elements(markup: str) -> str:
    lowered = markup.lower()
    kept: list[str] = []
    position = 0
    while (start := DROPPED_START.search(markup, position)) is not None:
        kept.append(markup[position : start.start()])
        end = lowered.find("</" + start.group(1).lower(), start.end())
        if end < 0:
            return "".join(kept)
        close = lowered.find(">", end)
        position = len(markup) if close < 0 else close + 1
    kept.append(markup[position:])
    return "".join(kept)


def _before_first_quote(markup: str) -> str:
    for tag in CONTAINER.finditer(markup):
        if QUOTE_MARKERS.search(tag.group(0)):
            return markup[: tag.start()]
    return markup
