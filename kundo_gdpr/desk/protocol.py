"""The DeskStore protocol and the plain values that cross it.

What a subject's data is, for every store:

- Identity: a subject is their normalised address (`kundo_gdpr.identity.key`:
  trimmed, display name and angle brackets removed, case-folded, IDN domain as
  punycode), matched against one normalised, indexed form of every owner
  column. `+tag` variants are other subjects: listed for review, never erased.
- Ownership is per item and per message: a forum post, chat message or mail
  message belongs to whoever wrote it. In a mail conversation where the
  subject is the customer, their messages and the agents' replies to them are
  theirs; a message another customer wrote there is that customer's. The
  subject's own messages in other people's conversations are theirs too. In a
  chat with several visitors the others' messages stay theirs.
- On their own items everything that names them goes: name, address, IP,
  title, body, attachments. On others' items their address in any written
  form is replaced by the marker and listed; their name, a `+tag` variant and
  a text attachment holding their address are only listed, for review.
- `export` returns exactly what `erase` (default strategies) takes as
  theirs, nothing written by another person; `count` returns what `erase`
  will report, the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kundo_gdpr.config import EraseConfig

# What erasing takes away per channel kind; config section [erase].
Strategy = EraseConfig
DEFAULT = Strategy()
# {channel kind: {item kind: count}}, e.g. {"forum": {"posts": 3, "redacted": 1}}
Counts = dict[str, dict[str, int]]


@dataclass(frozen=True)
class ChannelRef:
    id: int
    kind: str
    name: str
    organization_id: int
    organization_name: str


@dataclass(frozen=True)
class OrganizationRef:
    id: int
    name: str
    slug: str


@dataclass(frozen=True)
class EditorRef:
    id: int
    name: str
    email: str


@dataclass(frozen=True)
class ExportSheet:
    """One channel kind's items for an export: column keys and rows in order."""

    kind: str
    columns: tuple[str, ...]
    rows: Iterator[tuple[Any, ...]]


@dataclass(frozen=True)
class Mention:
    """Another person's item naming the subject: `found` is "address" or "name"."""

    kind: str
    item: str
    id: int
    found: str


@dataclass(frozen=True)
class EraseStep:
    """One batch of an erase, done in the caller's transaction.

    `counts` is what the batch removed or changed, `mentions` the others'
    items it listed, and `cursor` where the mention scan resumes after it.
    `last`: nothing is left after it, so the erase is marked done in the
    same transaction (a store that cannot tell leaves it False).
    """

    counts: Counts
    mentions: list[Mention]
    cursor: dict[str, int]
    last: bool = False


class DeskStore(Protocol):
    """Reads and changes the desk inside the caller's transaction."""

    def editor(self, email: str) -> EditorRef | None:
        """The editor with this address (case-insensitive), if any."""

    def organizations(self) -> list[OrganizationRef]:
        """Every organization (controller), for requests that name theirs."""

    def editor_channels(self, editor_id: int) -> list[ChannelRef]:
        """Every channel the editor edits, in any organization."""

    def organization_channels(self, organization_id: int, kinds: Sequence[str]) -> list[ChannelRef]:
        """The organization's channels of these kinds."""

    def channel_editor_names(self, channel_id: int) -> list[str]:
        """Names of the channel's editors (for 'who can ask instead')."""

    def stored_names(self, subject: str, channels: Sequence[ChannelRef]) -> list[str]:
        """The names the desk has on file for the subject (for name mentions)."""

    def count(
        self, subject: str, channels: Sequence[ChannelRef], strategy: Strategy = DEFAULT
    ) -> Counts:
        """What `erase` would touch, without changing anything."""

    def mentions(
        self, subject: str, channels: Sequence[ChannelRef], strategy: Strategy = DEFAULT
    ) -> list[Mention]:
        """Others' items holding the subject's address (which `erase` replaces)
        or stored name (which an agent reviews), without changing anything."""

    def erase(
        self,
        subject: str,
        channels: Sequence[ChannelRef],
        strategy: Strategy = DEFAULT,
        names: Sequence[str] | None = None,
        cursor: dict[str, int] | None = None,
    ) -> Iterator[EraseStep]:
        """Remove the subject's items batch by batch, each in the caller's transaction.

        The caller may commit after each step; a later call (with the stored
        `names` and last `cursor`) goes on from there and counts nothing twice.
        """

    def owner_keys(self, channels: Sequence[ChannelRef]) -> Iterator[tuple[int, str]]:
        """(channel id, normalised owner address) of every distinct owner of an
        item in these channels (the erasure ledger's replay matches them)."""

    def export(self, subject: str, channels: Sequence[ChannelRef]) -> Iterator[ExportSheet]:
        """The subject's items, one sheet per channel kind, streamed."""

    def attachments(
        self, subject: str, channels: Sequence[ChannelRef]
    ) -> Iterator[tuple[str, int, str, bytes]]:
        """Files on the exported items: (channel kind, attachment id, filename, data)."""
