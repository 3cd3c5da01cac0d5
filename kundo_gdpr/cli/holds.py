"""`holds`: legal holds on a subject's items in an organization (actions/holds.py)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from kundo_gdpr.actions import holds
from kundo_gdpr.cli.common import Subparsers, open_session
from kundo_gdpr.config import Config
from kundo_gdpr.records.hashing import key_ring

MESSAGES = {
    "no_such_organization": "no organization with the slug {organization!r}",
    "no_such_channel": "the organization has no channel {channel!r} (give its id or name)",
    "invalid_subject": "{subject!r} is not one email address",
    "reason_required": "give a reason (--reason)",
    "ends_in_the_past": "the end ({ends_at}) has already passed",
    "no_such_hold": "no hold #{hold_id}",
    "already_ended": "hold #{hold_id} has already ended",
}


def add(sub: Subparsers) -> None:
    p = sub.add_parser("holds", help="legal holds: a subject's items an erase must keep")
    hsub = p.add_subparsers(required=True, metavar="ACTION")
    ap = hsub.add_parser("add", help="place a hold (audited)")
    ap.add_argument("--org", required=True, help="the organization's slug")
    ap.add_argument("--subject", required=True, help="the person's email address")
    ap.add_argument("--channel", help="one channel (id or name); default: every channel")
    ap.add_argument("--reason", required=True, help="why it must be kept (told to the editor)")
    ap.add_argument("--until", required=True, type=_date, help="end date, YYYY-MM-DD (UTC)")
    ap.add_argument("--by", default=os.environ.get("USER", "cli"), help="who places it")
    ap.set_defaults(handler=cmd_holds_add)
    lp = hsub.add_parser("list", help="active holds, newest first")
    lp.add_argument("--all", action="store_true", help="ended and expired ones too")
    lp.set_defaults(handler=cmd_holds_list)
    ep = hsub.add_parser("end", help="end a hold now (audited)")
    ep.add_argument("id", type=int)
    ep.add_argument("--by", default=os.environ.get("USER", "cli"), help="who ends it")
    ep.set_defaults(handler=cmd_holds_end)


def _date(text: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _refused(exc: holds.HoldError) -> int:
    print(f"kundo-gdpr: {MESSAGES[exc.code].format(**exc.detail)}", file=sys.stderr)
    return 1


def cmd_holds_add(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session, session.begin():
        try:
            hold = holds.add(session, args.org, args.subject, args.reason, args.until, args.by,
                             ring=key_ring(config), channel=args.channel)
        except holds.HoldError as exc:
            return _refused(exc)
        print(f"hold #{hold.id} on {hold.subject} until {hold.ends_at:%Y-%m-%d}")
    return 0


def cmd_holds_list(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session:
        for h in holds.listed(session, include_ended=args.all):
            where = h["channel"] or "every channel"
            state = "active" if h["active"] else f"ended {h['ended_at'] or h['ends_at']:%Y-%m-%d}"
            print(f"#{h['id']:<4} {h['organization']:<16} {h['subject']:<32} {where} "
                  f"until {h['ends_at']:%Y-%m-%d} ({state}) by {h['created_by']}: {h['reason']}")
    return 0


def cmd_holds_end(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session, session.begin():
        try:
            holds.end(session, args.id, args.by, ring=key_ring(config))
        except holds.HoldError as exc:
            return _refused(exc)
        print(f"hold #{args.id} ended")
    return 0
