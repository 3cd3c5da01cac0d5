"""`outbox`: replies waiting, held or failed, and releasing them."""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy import select

from kundo_gdpr.cli.common import Subparsers, open_session
from kundo_gdpr.config import Config
from kundo_gdpr.models import OutboundMail, Request


def add(sub: Subparsers) -> None:
    p = sub.add_parser("outbox", help="replies waiting, held or failed")
    osub = p.add_subparsers(required=True, metavar="ACTION")
    lp = osub.add_parser("list", help="replies not yet sent (or in --state S), oldest first")
    lp.add_argument("--state", help="queued, held, failed or sent")
    lp.set_defaults(handler=cmd_outbox_list)
    rp = osub.add_parser("release", help="send a held reply now, or retry a failed one")
    rp.add_argument("id", type=int, help="the reply's number, as `outbox list` shows it")
    rp.add_argument("--by", default=os.environ.get("USER", "cli"), help="who releases")
    rp.set_defaults(handler=cmd_outbox_release)


def print_reply(m: OutboundMail) -> None:
    print(f"  #{m.id:<5} {m.purpose:<10} {m.state:<7} {m.to_addr} {m.message_id}")
    if m.state == "failed":
        print(f"         failed after {m.attempts} attempt(s): {m.last_error}")
    elif m.state == "held":
        print("         held: over the hourly reply limit; `kundo-gdpr outbox release` sends it")
    elif m.state == "queued" and m.last_error:
        when = f"{m.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        print(f"         retrying ({m.attempts} attempt(s)), next {when}: {m.last_error}")


def cmd_outbox_list(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session:
        stmt = select(OutboundMail).order_by(OutboundMail.id)
        if args.state:
            stmt = stmt.where(OutboundMail.state == args.state)
        else:
            stmt = stmt.where(OutboundMail.state != "sent")
        for m in session.scalars(stmt):
            request = session.get(Request, m.request_id) if m.request_id else None
            print(f"{request.reference if request else '-':<16}", end="")
            print_reply(m)
    return 0


def cmd_outbox_release(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.replies.outbox import release

    with open_session(config) as session, session.begin():
        row = session.get(OutboundMail, args.id)
        if row is None:
            print(f"kundo-gdpr: no reply #{args.id}", file=sys.stderr)
            return 1
        try:
            release(session, row, args.by)
        except ValueError as exc:
            print(f"kundo-gdpr: {exc}", file=sys.stderr)
            return 1
        print(f"reply #{row.id} to {row.to_addr} is queued")
    return 0
