"""The words a request is read by, as tables. Each row is tested."""

from __future__ import annotations

import re

from kundo_gdpr.vocabulary import ChannelKind, Kind

# The required sentence, after normalisation (see parse.normalise_sentence).
ASSERTIONS: tuple[str, ...] = (
    "vi har bekräftat personens identitet",
    "vi har bekräftat personernas identitet",
    "vi har bekräftat personen/personernas identitet",
    "vi har bekräftat personens/personernas identitet",
    "we have confirmed the person's identity",
    "we have confirmed the persons' identity",
    "we have confirmed the person's/persons' identity",
    "we have confirmed the identity of the person",
    "we have confirmed the identity of the persons",
)

# kind -> word patterns (matched on word boundaries, case-insensitively).
KIND_WORDS: dict[Kind, tuple[str, ...]] = {
    Kind.ERASE: (
        r"radera",
        r"radering",
        r"raderas",
        r"raderad",
        r"raderade",
        r"raderar",
        r"raderingen",
        r"ta bort",
        r"tas bort",
        r"tar bort",
        r"anonymisera",
        r"anonymiseras",
        r"anonymiserar",
        r"glömd",
        r"bortglömd",
        r"glömmas",
        r"erase",
        r"erasure",
        r"erased",
        r"delete",
        r"deleted",
        r"deletion",
        r"remove",
        r"removal",
        r"forget",
        r"forgotten",
        r"anonymise",
        r"anonymize",
    ),
    Kind.EXPORT: (
        r"registerutdrag",
        r"utdrag",
        r"exportera",
        r"exporterar",
        r"exporteras",
        r"utdraget",
        r"export",
        r"kopia",
        r"kopian",
        r"ta del av",
        r"subject access",
        r"access request",
        r"copy of",
        r"takeout",
        r"portability",
    ),
}

# channel -> word patterns. Words, not substrings: "e-postadress" is an address.
CHANNEL_WORDS: dict[ChannelKind, tuple[str, ...]] = {
    ChannelKind.MAIL: (
        r"mail",
        r"mails",
        r"mejl",
        r"mejlen",
        r"e-post",
        r"epost",
        r"e-mail",
        r"e-mails",
        r"email",
        r"emails",
        r"e-postmeddelanden",
        r"e-postmeddelandena",
        r"ärenden",
        r"ärendena",
        r"mailärenden",
    ),
    ChannelKind.FORUM: (
        r"forum",
        r"forumet",
        r"foruminlägg",
        r"foruminläggen",
        r"inlägg",
        r"inläggen",
        r"forum posts",
        r"posts",
    ),
    ChannelKind.CHAT: (
        r"chatt",
        r"chattar",
        r"chattarna",
        r"chatten",
        r"chat",
        r"chats",
        r"chattkonversationer",
        r"chattloggar",
        r"chat messages",
        r"chattmeddelanden",
    ),
}

# Phrases that contain a channel word but name an address, not a channel; they
# are blanked out before channels are looked for.
NOT_CHANNEL_WORDS: tuple[str, ...] = (
    r"email address",
    r"email addresses",
    r"e-mail address",
    r"e-mail addresses",
    r"mail address",
    r"mail addresses",
    r"mailadress",
    r"mejladress",
    r"e-postadress",
    r"e-postadresser",
    r"e-postadressen",
    r"chat name",
    # The mail being forwarded or attached, not the mail channel.
    r"bifogat mejl",
    r"bifogat mail",
    r"bifogade mejlet",
    r"bifogade mailet",
    r"vidarebefordrat mejl",
    r"vidarebefordrat mail",
    r"vidarebefordrade mejlet",
    r"attached mail",
    r"attached email",
    r"attached e-mail",
    r"forwarded mail",
    r"forwarded email",
    r"forwarded e-mail",
    r"mail attached",
    r"email attached",
    r"e-mail attached",
    r"mail is attached",
    r"email is attached",
    r"mail below",
    r"email below",
    r"mejlet nedan",
    r"mejlet bifogas",
    r"mejl bifogas",
)

# Phrases that name every channel at once (used when no channel is named).
ALL_CHANNELS_WORDS: tuple[str, ...] = (
    r"all data",
    r"all their data",
    r"all of their data",
    r"everything",
    r"alla uppgifter",
    r"alla personuppgifter",
    r"allt",
    r"all information",
    r"all the information",
    r"all the data",
    r"all of the data",
    r"all personal data",
    r"all their personal data",
    r"all channels",
    r"every channel",
    r"alla kanaler",
    r"samtliga kanaler",
    r"alla data",
    r"samtliga uppgifter",
    r"samtliga personuppgifter",
)

# Local parts of role addresses: a function, not a person. Never a subject unless
# the text names one as the person (then the agent is asked).
ROLE_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        "dpo", "dataskydd", "dataskyddsombud", "privacy", "gdpr", "info", "support",
        "kundtjanst", "kundtjänst", "kundservice", "customerservice", "noreply", "no-reply",
        "donotreply", "do-not-reply", "integritet", "personuppgifter", "hello", "kontakt",
        "contact", "admin", "office", "kontoret",
    }
)  # fmt: skip
# Mail services anyone may use: sharing one with the sender makes no colleague.
FREEMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "hotmail.com", "hotmail.se", "outlook.com", "live.com",
        "live.se", "msn.com", "yahoo.com", "yahoo.se", "icloud.com", "me.com", "mac.com",
        "aol.com", "gmx.com", "gmx.net", "protonmail.com", "proton.me", "telia.com",
        "bredband.net", "comhem.se", "spray.se", "tele2.se", "bahnhof.se",
    }
)  # fmt: skip
# Words that make an address in the same line the person the request is about.
PERSON_WORDS: tuple[str, ...] = (
    r"kund", r"kunden", r"kundens", r"kunder", r"kunderna", r"person", r"personen",
    r"personens", r"användare", r"användaren", r"användarens", r"medlem", r"medlemmen",
    r"registrerad", r"registrerade", r"den registrerade", r"konto", r"kontot", r"customer",
    r"customer's", r"customers", r"user", r"user's", r"member", r"data subject", r"account",
    r"individual", r"client",
)  # fmt: skip

# Machine mail (never answered), one table per kind of sign.
# Auto-Submitted with any value but this one.
AUTO_SUBMITTED_HUMAN = "no"
PRECEDENCE_MACHINE: tuple[str, ...] = ("bulk", "junk", "list", "auto_reply")
# Present at all, with any value.
AUTOREPLY_HEADERS: tuple[str, ...] = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
# List mail (RFC 2369, RFC 2919): newsletters and mailing lists, never a person asking.
LIST_HEADERS: tuple[str, ...] = ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")
# Local parts of robots' sender addresses.
MACHINE_SENDER_NAMES: tuple[str, ...] = (
    "mailer-daemon",
    "postmaster",
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
)
# Subject lines that start like this (case-insensitively).
AUTO_REPLY_SUBJECTS: tuple[str, ...] = (
    "autosvar",
    "automatiskt svar",
    "frånvaro",
    "out of office",
    "automatic reply",
    "auto-reply",
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "returned mail",
    "failure notice",
    "delivery failure",
)
# A report part anywhere (even bare, without the multipart/report around it).
REPORT_TYPES: frozenset[str] = frozenset(
    {
        "multipart/report",
        "message/delivery-status",
        "message/global-delivery-status",
        "message/feedback-report",
        "message/disposition-notification",
    }
)

# Swedish marker words for language detection; a few are enough for a request.
SWEDISH_WORDS = frozenset(
    [
        "och",
        "att",
        "det",
        "som",
        "är",
        "på",
        "för",
        "med",
        "har",
        "inte",
        "vi",
        "en",
        "ett",
        "av",
        "till",
        "den",
        "om",
        "kan",
        "hej",
        "vänligen",
        "tack",
        "personen",
        "identitet",
        "radera",
        "uppgifter",
        "hälsningar",
        "bekräftat",
        "kunden",
        "alla",
        "våra",
        "från",
    ]
)
ENGLISH_WORDS = frozenset(
    [
        "and",
        "the",
        "that",
        "is",
        "on",
        "for",
        "with",
        "have",
        "not",
        "we",
        "a",
        "an",
        "of",
        "to",
        "it",
        "if",
        "can",
        "hi",
        "hello",
        "please",
        "thanks",
        "person",
        "identity",
        "erase",
        "data",
        "regards",
        "confirmed",
        "customer",
        "all",
        "our",
        "from",
    ]
)


def word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """One regex matching any of `words` as whole words (hyphens bind)."""
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


KIND_PATTERNS = {kind: word_pattern(words) for kind, words in KIND_WORDS.items()}
CHANNEL_PATTERNS = {kind: word_pattern(words) for kind, words in CHANNEL_WORDS.items()}
ALL_CHANNELS_PATTERN = word_pattern(ALL_CHANNELS_WORDS)
NOT_CHANNEL_PATTERN = word_pattern(NOT_CHANNEL_WORDS)
PERSON_PATTERN = word_pattern(PERSON_WORDS)
REQUEST_KIND_PATTERN = word_pattern(tuple(w for words in KIND_WORDS.values() for w in words))
# Words of the request itself: a line holding one is never a closing line.
REQUEST_PATTERN = word_pattern(
    tuple(w for words in (*KIND_WORDS.values(), *CHANNEL_WORDS.values()) for w in words)
)
