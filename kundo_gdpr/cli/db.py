"""`db`: database maintenance."""

from __future__ import annotations

import argparse

from kundo_gdpr import db
from kundo_gdpr.cli.common import Subparsers
from kundo_gdpr.config import Config
from kundo_gdpr.desk.sql_erase import ERASED_TABLES


def add(sub: Subparsers) -> None:
    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(required=True, metavar="ACTION")
    dbsub.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)
    dbsub.add_parser(
        "compact", help="rewrite the desk's tables so no erased byte stays in their files "
        "(PostgreSQL: VACUUM FULL, locks each table while it runs; SQLite: VACUUM)",
    ).set_defaults(handler=cmd_db_compact)


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    db.upgrade(db.make_engine(config.database_url()), config=config)
    print("database is up to date")
    return 0


def cmd_db_compact(args: argparse.Namespace, config: Config) -> int:
    db.compact(db.make_engine(config.database_url()), ERASED_TABLES)
    print(f"compacted: {', '.join(ERASED_TABLES)}")
    return 0
