"""Which channels a mail names: listed words, Swedish compounds by their parts,
and "everything" narrowed by a scope phrase ("everything she wrote in our forum")."""

from __future__ import annotations

import re

from kundo_gdpr.intake import phrases
from kundo_gdpr.vocabulary import CHANNELS, ChannelKind

# Compound parts: Swedish writes "chattsamtal", "mejlkonversationer", "forumtrådar".
# The first part names the channel; "-samtal", "-konversation", "-tråd", "-logg"
# name one only after such a first part ("telefonsamtal", "tråden nedan" do not).
PREFIXES: tuple[tuple[str, ChannelKind], ...] = (
    ("chatt", ChannelKind.CHAT),
    ("chat", ChannelKind.CHAT),
    ("forum", ChannelKind.FORUM),
    ("mejl", ChannelKind.MAIL),
    ("mail", ChannelKind.MAIL),
    ("e-post", ChannelKind.MAIL),
    ("epost", ChannelKind.MAIL),
    ("e-mail", ChannelKind.MAIL),
    ("email", ChannelKind.MAIL),
)
# What may follow a channel's first part: what is said or kept there. English
# compounds ("mailbox", "chatbot") and verbs ("mejlade") have other endings.
SECOND_PARTS: tuple[str, ...] = (
    "samtal", "konversation", "tråd", "inlägg", "logg", "ärende", "meddelande", "historik",
    "korrespondens", "data", "kommunikation", "diskussion", "svar", "kontakt", "post",
    "uppgift", "text", "fråg", "mejl", "mail",
)  # fmt: skip
# "Inlägg" anywhere is a post ("blogginlägg", "inläggen"). "Ärende" is a case in
# the mail channel only as a compound or plural ("supportärenden"); "ärendet" and
# "ärendenummer" are this matter and its number.
POSTS_PART = "inlägg"
CASES_PART = "ärende"
NOT_CASES: tuple[str, ...] = ("ärende", "ärendet", "nummer", "nr", "-id")
# Words with these parts name no channel: an address, a name, a link.
NOT_CHANNEL_PARTS: tuple[str, ...] = ("adress", "address", "mailto", "namn", "chatbot")
WORD = re.compile(r"[^\W\d_][\w-]*", re.UNICODE)
# A scope: a preposition, maybe a determiner, then a channel word.
SCOPE_WORDS: tuple[str, ...] = (
    "i", "på", "från", "ur", "inom", "via", "in", "on", "from", "within", "via", "across",
)  # fmt: skip
DETERMINERS: tuple[str, ...] = (
    "vårt", "vår", "våra", "ert", "er", "era", "det", "den", "our", "your", "the", "their",
    "its", "his", "her", "this",
)  # fmt: skip
SCOPE = re.compile(
    r"(?<![\w-])(?:" + "|".join(SCOPE_WORDS) + r")\s+(?:(?:" + "|".join(DETERMINERS)
    + r")\s+)?(?P<word>[^\W\d_][\w-]*)",
    re.IGNORECASE,
)


def word_channel(word: str) -> ChannelKind | None:
    """The channel one word names, by the listed words or its parts."""
    lowered = word.lower()
    if any(part in lowered for part in NOT_CHANNEL_PARTS):
        return None
    for kind, pattern in phrases.CHANNEL_PATTERNS.items():
        if pattern.fullmatch(lowered):
            return kind
    for prefix, kind in PREFIXES:
        if lowered.startswith(prefix) and _second_part(lowered[len(prefix) :]):
            return kind
    if POSTS_PART in lowered:
        return ChannelKind.FORUM
    if CASES_PART in lowered and not any(
        lowered == n or (n != "ärende" and n in lowered) for n in NOT_CASES
    ):
        return ChannelKind.MAIL
    return None


def _second_part(rest: str) -> bool:
    """`rest` is "-" (Swedish "chatt- och forumdata") or a listed second part,
    maybe after a hyphen or a linking "s"."""
    if rest == "-":
        return True
    rest = rest.removeprefix("-")
    return any(rest.startswith(p) or rest.startswith("s" + p) for p in SECOND_PARTS)


def named(text: str) -> tuple[str, ...]:
    """Channels named in `text` (addresses and address phrases already blanked)."""
    found = {kind for kind, pattern in phrases.CHANNEL_PATTERNS.items() if pattern.search(text)}
    found |= {k for k in map(word_channel, WORD.findall(text)) if k}
    return tuple(k for k in CHANNELS if k in found)


def scoped(text: str) -> tuple[str, ...]:
    """Channels named after a preposition: "i forumet", "in our chat", "från mejlen"."""
    found = set()
    for match in SCOPE.finditer(text):
        kind = word_channel(match.group("word"))
        if kind:
            found.add(kind)
    return tuple(k for k in CHANNELS if k in found)


def read_channels(text: str) -> tuple[tuple[str, ...], bool]:
    """Channels named in `text`, and whether an "all data" phrase widened them.

    "All data" alone means all three channels. A scope phrase narrows it:
    "everything X wrote in our forum" is the forum. "All data" beside a channel
    named without a scope ("all data and the chats") reads as all three, which
    erases more than the named channel, so it is reported (`channels_widened`)
    and an agent sees why.
    """
    names = named(text)
    if not phrases.ALL_CHANNELS_PATTERN.search(text):
        return names, False
    scope = scoped(text)
    if scope:
        return names, False
    return CHANNELS, bool(names) and names != CHANNELS
