"""Separating what the sender wrote now from quotes and signatures."""

from __future__ import annotations

import re

# A line that starts a quoted earlier message; it and everything after go.
REPLY_HEADERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*On\b.{0,200}\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Den\b.{0,200}\bskrev\b.{0,200}:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*(Original Message|Ursprungligt meddelande)\s*-{2,}\s*$", re.I),
)

# Outlook's header block: two or more of these on consecutive lines.
OUTLOOK_FIELDS: tuple[str, ...] = (
    "From",
    "Från",
    "Sent",
    "Skickat",
    "To",
    "Till",
    "Subject",
    "Ämne",
    "Date",
    "Datum",
    "Cc",
    "Kopia",
)
OUTLOOK_HEADER = re.compile(
    r"^\s*\*?(?:" + "|".join(OUTLOOK_FIELDS) + r")\*?\s*:",
    re.IGNORECASE,
)

FORWARD_MARKERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*-{2,}\s*(Forwarded message|Vidarebefordrat meddelande)\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*Begin forwarded message:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Början på vidarebefordrat meddelande:\s*$", re.IGNORECASE),
)

# A sign-off line is the phrase alone or followed by a name ("Mvh Eva", "Thanks,
# Jon"); "Tack för snabbt svar!" opens a mail and is not a signature.
SIGN_OFFS: tuple[str, ...] = (
    "med vänliga hälsningar",
    "vänliga hälsningar",
    "mvh",
    "hälsningar",
    "best regards",
    "kind regards",
    "regards",
    "thanks",
    "thank you",
    "tack",
    "cheers",
    "hälsar",
    "bästa hälsningar",
    "varma hälsningar",
    "med vänlig hälsning",
    "vänlig hälsning",
    "allt gott",
    "ha det bra",
    "ha en bra dag",
    "trevlig helg",
    "vänligen",
    "tack på förhand",
    "best wishes",
    "all the best",
    "warm regards",
    "warmest regards",
    "many thanks",
    "thanks in advance",
    "sincerely",
    "yours sincerely",
    "kind wishes",
)
DEVICE_SIGN_OFFS: tuple[str, ...] = ("skickat från min", "sent från min", "sent from my")
_NAME = r"(?:[A-ZÅÄÖÉ][\w.'-]*(?:\s+[A-ZÅÄÖÉ][\w.'-]*){0,2})"
SIGN_OFF = re.compile(
    r"^\s*(?i:"
    + "|".join(re.escape(s) for s in SIGN_OFFS)
    + r")\s*[,.!:;/-]*\s*"
    + _NAME
    + r"?\s*[,.!]*\s*$"
)
DEVICE_SIGN_OFF = re.compile(
    r"^\s*(?:" + "|".join(re.escape(s) for s in DEVICE_SIGN_OFFS) + r")\b.{0,40}$",
    re.IGNORECASE,
)
MAX_SIGN_OFF_LENGTH = 80
SIGNATURE_DASHES = re.compile(r"^--\s?$")
# "/Karin", "– Karin Berg": a name after a slash or dash, alone on its line.
NAME_SIGN_OFF = re.compile(r"^\s*[/–—-]\s*" + _NAME + r"\s*$")
# Any short closing line ("All the best,", "Ha det fint!") counts when a
# short block that starts with a name follows it to the end of the text.
CLOSING_LINE = re.compile(r"^\s*[^\W\d][^@:;<>\d]{0,38}[,!.]\s*$")
# A closing line that ends in a full stop is a short one ("Tack på förhand.").
MAX_CLOSING_WORDS_WITH_STOP = 3
NAME_LINE = re.compile(r"^\s*" + _NAME + r"\s*[,.]?\s*$")
MAX_CLOSING_WORDS = 5
MAX_NAME_BLOCK_LINES = 8
MAX_NAME_BLOCK_LINE = 90


def new_text(text: str, forwarded: bool) -> tuple[str, str]:
    """Split a plain text body into (new text, forwarded block).

    Quoted lines and replied-to messages are dropped. When the mail is a
    forward, the forwarded block is returned separately: its From line names
    a candidate data subject.
    """
    lines = text.splitlines()
    kept: list[str] = []
    for index, line in enumerate(lines):
        if forwarded and any(p.match(line) for p in FORWARD_MARKERS):
            return "\n".join(kept), "\n".join(lines[index + 1 :])
        if _reply_header_at(lines, index) or _outlook_block_at(lines, index):
            if forwarded:
                return "\n".join(kept), "\n".join(lines[index:])
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept), ""


def _reply_header_at(lines: list[str], index: int) -> bool:
    """A reply header on this line, or wrapped onto the next (Gmail wraps at 78)."""
    line = lines[index]
    if any(p.match(line) for p in REPLY_HEADERS):
        return True
    if index + 1 >= len(lines) or not re.match(r"^\s*(On|Den)\b", line, re.IGNORECASE):
        return False
    joined = line.rstrip() + " " + lines[index + 1].strip()
    return any(p.match(joined) for p in REPLY_HEADERS)


def _outlook_block_at(lines: list[str], index: int) -> bool:
    window = lines[index : index + 6]
    if not window or not OUTLOOK_HEADER.match(window[0]):
        return False
    return sum(1 for line in window if OUTLOOK_HEADER.match(line)) >= 2


def _is_sign_off(line: str) -> bool:
    # Sign-offs are short; the length check also keeps the name pattern linear.
    if len(line) > MAX_SIGN_OFF_LENGTH:
        return False
    return bool(SIGN_OFF.match(line) or DEVICE_SIGN_OFF.match(line))


def without_signature(
    text: str, request_words: re.Pattern[str] | None = None, signer: str | None = None
) -> str:
    """The text above the signature.

    A signature starts at a `-- ` line, a listed sign-off line, a "/Name"
    line, any short closing line (not the greeting, without words of the
    request itself, which `request_words` matches) that a short block opening
    with a name follows to the end, or a short block to the end that opens
    with the sender's own name (`signer`, the From display name).
    """
    lines = text.splitlines()
    tail = _Tail(lines)
    names = {w.casefold() for w in re.findall(r"[^\W\d_]+", signer or "") if len(w) > 1}
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if SIGNATURE_DASHES.match(line) or _is_sign_off(line) or NAME_SIGN_OFF.match(line):
            return "\n".join(lines[:index])
        if index <= tail.first or len(line) > MAX_NAME_BLOCK_LINE:
            continue  # the greeting, or no short line
        if _closing_at(line, tail, index, request_words) or _signer_at(line, tail, index, names):
            return "\n".join(lines[:index])
    return text


class _Tail:
    """What follows each line, precomputed so that every line's check is O(1)
    (a hostile mail of a hundred thousand short lines stays linear)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        count = len(lines)
        self.left = [0] * (count + 1)  # non-empty lines from i to the end
        self.next = [count] * (count + 1)  # the first non-empty line at or after i
        self.long = [False] * (count + 1)  # a line too long for a signature from i on
        for i in range(count - 1, -1, -1):
            filled = bool(lines[i].strip())
            self.left[i] = self.left[i + 1] + filled
            self.next[i] = i if filled else self.next[i + 1]
            self.long[i] = self.long[i + 1] or len(lines[i]) > MAX_NAME_BLOCK_LINE
        self.first = self.next[0]

    def short_block_after(self, index: int, opens: re.Pattern[str] | None = None) -> bool:
        """A block of at most MAX_NAME_BLOCK_LINES short lines runs from after
        `index` to the end, opening with a line `opens` matches."""
        start = self.next[index + 1]
        if start >= len(self.lines) or self.left[start] > MAX_NAME_BLOCK_LINES:
            return False
        if self.long[start]:
            return False
        return opens is None or bool(opens.match(self.lines[start]))


def _closing_at(
    line: str, tail: _Tail, index: int, request_words: re.Pattern[str] | None
) -> bool:
    words = len(line.split())
    if not CLOSING_LINE.match(line) or words > MAX_CLOSING_WORDS:
        return False
    if line.rstrip().endswith(".") and words > MAX_CLOSING_WORDS_WITH_STOP:
        return False
    if request_words is not None and request_words.search(line):
        return False
    return tail.short_block_after(index, NAME_LINE)


def _signer_at(line: str, tail: _Tail, index: int, names: set[str]) -> bool:
    """The sender's own name alone on a line, a short block (or nothing) after it."""
    if not names:
        return False
    words = [w.casefold() for w in re.findall(r"[^\W\d_]+", line)]
    if not words or not set(words) <= names or not NAME_LINE.match(line):
        return False
    return tail.left[index + 1] == 0 or tail.short_block_after(index)
