"""The DeskStore protocol and the plain values that cross it."""

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

    def export(self, subject: str, channels: Sequence[ChannelRef]) -> Iterator[ExportSheet]:
        """The subject's items, one sheet per channel kind, streamed."""

    def attachments(
        self, subject: str, channels: Sequence[ChannelRef]
    ) -> Iterator[tuple[str, int, str, bytes]]:
        """Files on the exported items: (channel kind, attachment id, filename, data)."""
