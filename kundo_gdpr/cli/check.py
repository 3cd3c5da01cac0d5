"""`check`: the config, and every part it names reached (database, mailbox, SMTP,
DKIM keys, secrets)."""

from __future__ import annotations

import argparse

from kundo_gdpr.cli.common import Subparsers
from kundo_gdpr.config import Config


def add(sub: Subparsers) -> None:
    p = sub.add_parser("check", help="check the config and reach every part it names: "
                       "database, mailbox, SMTP, DKIM keys, secrets")
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.operations import check

    outcomes = check.run(config)
    for outcome in outcomes:
        print(outcome.line())
    return 1 if any(o.problem for o in outcomes) else 0
