"""`requests`: list, show, preview, approve and reject requests."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.cli.common import Subparsers, no_such, open_session
from kundo_gdpr.cli.outbox import print_reply
from kundo_gdpr.config import Config
from kundo_gdpr.models import Agent, OutboundMail, Request
from kundo_gdpr.stages import decide, run, undo
from kundo_gdpr.stages.unit import reason_of


def add(sub: Subparsers) -> None:
    p = sub.add_parser("requests", help="list, show, approve and reject requests")
    rsub = p.add_subparsers(required=True, metavar="ACTION")
    lp = rsub.add_parser("list", help="requests, newest first")
    lp.add_argument("--state", help="only requests in this state")
    lp.set_defaults(handler=cmd_requests_list)
    pp = rsub.add_parser("preview", help="what erasing a request would remove; changes nothing")
    pp.add_argument("reference")
    pp.set_defaults(handler=cmd_requests_preview)
    sp = rsub.add_parser("show", help="one request with its audit trail and replies")
    sp.add_argument("reference")
    sp.set_defaults(handler=cmd_requests_show)
    ap = rsub.add_parser("approve", help="approve a request waiting for review")
    ap.add_argument("reference")
    ap.add_argument("--by", default=os.environ.get("USER", "cli"), help="who approves")
    ap.set_defaults(handler=cmd_requests_approve)
    jp = rsub.add_parser("reject", help="reject a request; the reason is mailed to the editor")
    jp.add_argument("reference")
    jp.add_argument("--reason", required=True)
    jp.add_argument("--by", default=os.environ.get("USER", "cli"), help="who rejects")
    jp.set_defaults(handler=cmd_requests_reject)
    up = rsub.add_parser("undo", help="undo an erase within its safety window ([erase] undo_hours)")
    up.add_argument("reference")
    up.add_argument("--reason", required=True, help="why; mailed to the editor")
    up.add_argument("--by", default=os.environ.get("USER", "cli"), help="who undoes it")
    up.set_defaults(handler=cmd_requests_undo)


# -- commands -----------------------------------------------------------------


def cmd_requests_list(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session:
        stmt = select(Request).order_by(Request.id.desc())
        if args.state:
            stmt = stmt.where(Request.state == args.state)
        for r in session.scalars(stmt):
            print(
                f"{r.reference:<16} {r.state:<13} {r.due_at:%Y-%m-%d} {r.sender or '-':<30} "
                f"{','.join(r.kinds) or '-':<13} {','.join(s.shown for s in r.subjects) or '-'}"
            )
    return 0


def cmd_requests_show(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session:
        try:
            r = decide.find(session, args.reference)
        except decide.ReviewError:
            return no_such(args.reference)
        for label, value in (
            ("reference", r.reference),
            ("state", r.state),
            ("sender", r.sender),
            ("kinds", ", ".join(r.kinds)),
            ("channels", ", ".join(r.channel_kinds)),
            ("subjects", ", ".join(s.shown for s in r.subjects)),
            ("problems", ", ".join(r.problems)),
            ("received", r.received_at),
            ("due", r.due_at),
            ("result", json.dumps(r.result, ensure_ascii=False)),
            *([("stopped", stopped)] if (stopped := reason_of(r)) else []),
            *_minimised(r),
        ):
            print(f"{label:<10} {value}")
        print("\nreplies:")
        replies = select(OutboundMail).where(OutboundMail.request_id == r.id)
        for m in session.scalars(replies.order_by(OutboundMail.id)):
            print_reply(m)
        print("\naudit trail:")
        for e in audit.trail(session, r):
            print(
                f"  {e.at:%Y-%m-%d %H:%M:%S} {e.actor:<22} {e.action:<14} "
                f"{json.dumps(audit.shown(r, e.detail), ensure_ascii=False, default=str)[:200]}"
            )
    return 0


def _minimised(r: Request) -> list[tuple[str, object]]:
    """What `requests show` says of a minimised request (records.retention)."""
    if r.minimised_at is None:
        return []
    mail = r.inbound_mail
    return [("minimised", f"{r.minimised_at:%Y-%m-%d %H:%M} UTC: addresses kept masked and "
                          "as keyed hashes; mail, names, subject line and reply texts removed"),
            ("mail", f"{mail.size} bytes, SHA-256 {mail.sha256} (not kept)")]


def cmd_requests_preview(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session:
        try:
            request = decide.find(session, args.reference)
        except decide.ReviewError:
            return no_such(args.reference)
        for subject, by_channel in run.preview(session, config, request).items():
            print(subject)
            for channel, counts in by_channel.items():
                shown = ", ".join(f"{n} {name}" for name, n in counts.items())
                print(f"  {channel:<6} {shown}")
    return 0


def cmd_requests_approve(args: argparse.Namespace, config: Config) -> int:
    return _decide(config, args.reference, args.by,
                   lambda s, r, actor: decide.approve(s, config, r, actor))


def cmd_requests_reject(args: argparse.Namespace, config: Config) -> int:
    return _decide(config, args.reference, args.by,
                   lambda s, r, actor: decide.reject(s, config, r, actor, args.reason))


def _decide(
    config: Config, reference: str, by: str,
    action: Callable[[Session, Request, decide.Actor], object],
) -> int:
    """The same decision, rules and all, as the web app's: `--by` is the acting
    agent (an admin when erasure needs one); anyone else acts as a non-admin."""
    with open_session(config) as session, session.begin():
        try:
            request = decide.find(session, reference)
            action(session, request, _actor(session, by))
        except decide.ReviewError as exc:
            if exc.code == "no_such_request":
                return no_such(reference)
            print(f"kundo-gdpr: {reference}: {_refusal(exc)}", file=sys.stderr)
            return 1
        print(f"{request.reference} is now {request.state}")
    return 0


def cmd_requests_undo(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session, session.begin():
        try:
            request = decide.find(session, args.reference)
        except decide.ReviewError:
            return no_such(args.reference)
        try:
            restored = undo.undo(session, config, request, args.by, args.reason)
        except undo.UndoRefused as exc:  # nothing was changed: record why, and commit that
            undo.refused(session, request, args.by, exc)
            print(f"kundo-gdpr: {args.reference}: {undo.explain(exc)}", file=sys.stderr)
            return 1
        print(f"{request.reference} is now {request.state}: {sum(restored.values())} rows restored")
    return 0


def _actor(session: Session, by: str) -> decide.Actor:
    agent = session.scalar(select(Agent).where(func.lower(Agent.email) == by.lower()))
    return decide.Actor(agent.email, agent.is_admin) if agent else decide.Actor(by)


def _refusal(exc: decide.ReviewError) -> str:
    """The web app's words for a refused action (English), with the detail."""
    from kundo_gdpr.web.i18n import strings

    words = strings("en").get(f"error_{exc.code}", exc.code)
    detail = str(exc)
    return f"{words} ({detail})" if detail and detail != exc.code else words
