"""What the command modules share: the handler type, a session on an upgraded
database, and the "no such request" message."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy.orm import Session

from kundo_gdpr import db
from kundo_gdpr.config import Config

Handler = Callable[[argparse.Namespace, Config], int]
if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction


def open_session(config: Config) -> Session:
    engine = db.make_engine(config.database_url())
    db.upgrade(engine, config=config)
    return db.session_factory(engine)()


def no_such(reference: str) -> int:
    print(f"kundo-gdpr: no request {reference}", file=sys.stderr)
    return 1
