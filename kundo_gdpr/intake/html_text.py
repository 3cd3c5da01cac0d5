"""HTML bodies as plain text, read by a real HTML parser (selectolax's Lexbor).

The document is walked once, in document order, with an explicit stack (no
recursion, so a hundred thousand nested tags cannot overflow it). Block
elements, list items and table cells are set apart by line breaks or spaces,
so neighbouring cells never merge into one word or address. Comments,
including Outlook's conditional comments (`<!--[if mso]>`), never contribute
text, and neither do scripts, styles, the head or elements hidden by style.
"""

from __future__ import annotations

import re
import urllib.parse

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Containers that hold the message being replied to (Gmail, Outlook, Apple, Yahoo, Thunderbird).
QUOTE_CONTAINER_MARKERS: tuple[str, ...] = (
    "gmail_quote",  # Gmail
    "divRplyFwdMsg",  # Outlook (web and desktop)
    "OutlookMessageHeader",  # older Outlook
    "appendonsend",  # Outlook: everything after our own text
    "moz-cite-prefix",  # Thunderbird
    "yahoo_quoted",  # Yahoo
)
QUOTE_MARKERS = re.compile("|".join(QUOTE_CONTAINER_MARKERS), re.IGNORECASE)
DROPPED = frozenset({"head", "script", "style", "title", "template", "-comment", "svg"})
# Elements that start and end a line of their own.
BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
        "tbody", "tfoot", "thead", "tr", "ul", "body", "html", "caption",
    }
)  # fmt: skip
CELLS = frozenset({"td", "th"})
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
ADDRESS_IN_TEXT = re.compile(r"@[\w-]+\.")
BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*(?:\n[ \t\r\f\v]*)+")
TRAILING_SPACE = re.compile(r"[ \t]+\n")


def html_to_text(markup: str, keep_quotes: bool = False) -> str:
    """Plain text of an HTML body, with quoted containers removed unless `keep_quotes`."""
    root = LexborHTMLParser(markup).root
    if root is None:
        return ""
    text = "".join(_walk(root, keep_quotes)).replace("\xa0", " ")
    return BLANK_LINES.sub("\n\n", TRAILING_SPACE.sub("\n", text)).strip()


def _walk(root: LexborNode, keep_quotes: bool) -> list[str]:
    out: list[str] = []
    # (node, None) opens a node; (None, text) writes what closes one.
    stack: list[tuple[LexborNode | None, str]] = [(root, "")]
    while stack:
        node, closing = stack.pop()
        if node is None:
            out.append(closing)
            continue
        tag = node.tag or ""
        if tag == "-text":
            out.append(node.text_content or "")
            continue
        if tag in DROPPED or _hidden(node):
            continue
        if not keep_quotes and _is_quote(node, tag):
            break  # the quoted message and everything after it
        if tag == "br":
            out.append("\n")
            continue
        opening, close = ("\n", "\n") if tag in BLOCKS else (" ", " ") if tag in CELLS else ("", "")
        out.append(opening)
        if tag == "a":
            close = _mailto(node) + close
        stack.append((None, close))
        stack.extend((child, "") for child in reversed(list(node.iter(include_text=True))))
    return out


def _hidden(node: LexborNode) -> bool:
    attributes = node.attributes
    if "hidden" in attributes:
        return True
    return bool(HIDDEN_STYLE.search(attributes.get("style") or ""))


def _is_quote(node: LexborNode, tag: str) -> bool:
    if tag not in ("blockquote", "div"):
        return False
    attributes = node.attributes
    if (attributes.get("type") or "").strip().lower() == "cite":  # Apple Mail, Thunderbird
        return True
    return bool(QUOTE_MARKERS.search(" ".join(v or "" for v in attributes.values())))


def _mailto(node: LexborNode) -> str:
    """A mailto link's address, when the link's visible text shows none.

    What the editor saw is what counts: a link that shows one address and
    points at another adds nothing.
    """
    href = (node.attributes.get("href") or "").strip()
    if not href.lower().startswith("mailto:"):
        return ""
    if ADDRESS_IN_TEXT.search(node.text(deep=True) or ""):
        return ""
    address = urllib.parse.unquote(href[7:].split("?", 1)[0])
    return " " + address.split(",", 1)[0].strip() + " "
