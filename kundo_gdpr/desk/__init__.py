"""The desk boundary: everything kundo-gdpr knows about channels and items.

A host desk with another schema implements `DeskStore` and registers it in
`REGISTRY`; config `desk.store` names the one to use.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from kundo_gdpr.desk.protocol import (
    ChannelRef,
    Counts,
    DeskStore,
    EditorRef,
    EraseStep,
    ExportSheet,
    Mention,
    OrganizationRef,
    Strategy,
)
from kundo_gdpr.desk.sql import SqlDesk

REGISTRY: dict[str, Callable[[Session], DeskStore]] = {"sql": SqlDesk}


def open_desk(name: str, session: Session) -> DeskStore:
    return REGISTRY[name](session)


__all__ = [
    "REGISTRY",
    "ChannelRef",
    "Counts",
    "DeskStore",
    "EditorRef",
    "EraseStep",
    "ExportSheet",
    "Mention",
    "OrganizationRef",
    "Strategy",
    "open_desk",
]
