"""What a request can ask for (kinds) and where a desk keeps data (channels).

The one place these words are defined; everything else imports them. It sits
at the bottom of the layers and imports nothing from kundo_gdpr. Their names
in each language are in mail_templates/<lang>/strings.toml ([kinds] and
[channels]), read through kundo_gdpr.i18n by the replies and the web pages.

A channel's kind is ChannelKind, as the desk's `channels.kind` column names it
(`Channel` is the desk's table). Members are `str`s (StrEnum): they compare,
hash and serialise (JSON, the database) as their values, so "erase" read back
from a stored request equals Kind.ERASE. The tuples are in the order the words
are shown.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    ERASE = "erase"
    EXPORT = "export"

    def __repr__(self) -> str:
        # As the plain word, so a tuple of kinds prints (argparse, logs) as it did.
        return repr(self.value)


class ChannelKind(StrEnum):
    MAIL = "mail"
    FORUM = "forum"
    CHAT = "chat"

    def __repr__(self) -> str:
        return repr(self.value)


KINDS: tuple[Kind, ...] = tuple(Kind)
CHANNELS: tuple[ChannelKind, ...] = tuple(ChannelKind)
