"""`db`: database maintenance."""

from __future__ import annotations

import argparse

from kundo_gdpr import db
from kundo_gdpr.cli.common import Subparsers
from kundo_gdpr.config import Config


def add(sub: Subparsers) -> None:
    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(required=True, metavar="ACTION")
    dbsub.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    db.upgrade(db.make_engine(config.database_url()))
    print("database is up to date")
    return 0
