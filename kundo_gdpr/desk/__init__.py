"""The desk boundary: everything kundo-gdpr knows about channels and items.

A host desk with another schema implements `DeskStore` and registers it in
`REGISTRY`; config `desk.store` names the one to use.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
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
from kundo_gdpr.desk.sql import SqlDesk, analyse_tables, purge_tables

REGISTRY: dict[str, Callable[[Session], DeskStore]] = {"sql": SqlDesk}
# After an erase, outside any transaction: the erased bytes out of the
# database's files (WAL, full-text index, dead tuples). A host desk in
# another database registers its own, or nothing.
PURGERS: dict[str, Callable[[Engine], None]] = {"sql": purge_tables}
# Before a ledger replay, which runs after a restore: planner statistics for
# tables that have none yet.
ANALYSERS: dict[str, Callable[[Engine], None]] = {"sql": analyse_tables}


def open_desk(name: str, session: Session) -> DeskStore:
    return REGISTRY[name](session)


def purge(name: str, engine: Engine) -> None:
    if (purger := PURGERS.get(name)) is not None:
        purger(engine)


def analyse(name: str, engine: Engine) -> None:
    if (analyser := ANALYSERS.get(name)) is not None:
        analyser(engine)


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
    "analyse",
    "open_desk",
    "purge",
]
