"""`agents`: accounts for the review queue."""

from __future__ import annotations

import argparse
import os
import sys

from kundo_gdpr.cli.common import Subparsers, open_session
from kundo_gdpr.config import Config


def add(sub: Subparsers) -> None:
    p = sub.add_parser("agents", help="accounts for the review queue")
    asub = p.add_subparsers(required=True, metavar="ACTION")
    ap = asub.add_parser("add", help="add an agent (password from $KUNDO_GDPR_AGENT_PASSWORD "
                                     "or a prompt)")
    ap.add_argument("email")
    ap.add_argument("--admin", action="store_true", help="may approve erasure when required")
    ap.set_defaults(handler=cmd_agents_add)


def cmd_agents_add(args: argparse.Namespace, config: Config) -> int:
    import getpass

    from sqlalchemy.exc import IntegrityError

    from kundo_gdpr.web.auth import add_agent

    password = os.environ.get("KUNDO_GDPR_AGENT_PASSWORD") or getpass.getpass("Password: ")
    if len(password) < 10:
        print("kundo-gdpr: the password must be at least 10 characters", file=sys.stderr)
        return 1
    try:
        with open_session(config) as session, session.begin():
            add_agent(session, args.email, password, is_admin=args.admin)
    except IntegrityError:
        print(f"kundo-gdpr: agent {args.email} already exists", file=sys.stderr)
        return 1
    print(f"agent {args.email.lower()} added{' as admin' if args.admin else ''}")
    return 0
