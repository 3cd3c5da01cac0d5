"""The kundo-gdpr command: one small function per subcommand."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr import audit, db, pipeline
from kundo_gdpr import config as config_module
from kundo_gdpr.config import Config, ConfigError
from kundo_gdpr.intake.parse import ParseError, parse
from kundo_gdpr.models import OutboundMail, Request

Handler = Callable[[argparse.Namespace, Config], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_module.load(_config_path(args.config))
    except ConfigError as exc:
        print(f"kundo-gdpr: configuration error: {exc}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    return handler(args, config)


def _config_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    if env := os.environ.get("KUNDO_GDPR_CONFIG"):
        return Path(env)
    default = Path("config.toml")
    return default if default.exists() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kundo-gdpr", description=__doc__)
    parser.add_argument("--config", help="config file (default: ./config.toml, $KUNDO_GDPR_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="fetch, process and deliver until stopped")
    p.add_argument("--once", action="store_true", help="one pass over every loop, then exit")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("demo", help="seed a sample desk and run four request mails through")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("parse", help="parse mail files and print what was understood")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per line per file")
    p.set_defaults(handler=cmd_parse)

    p = sub.add_parser("check", help="check the config and reach every part it names: "
                       "database, mailbox, SMTP, DKIM keys, secrets")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(required=True, metavar="ACTION")
    dbsub.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    _add_requests(sub)
    _add_outbox(sub)
    _add_web(sub)
    return parser


def _add_outbox(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="replies waiting, held or failed")
    osub = p.add_subparsers(required=True, metavar="ACTION")
    lp = osub.add_parser("list", help="replies not yet sent (or in --state S), oldest first")
    lp.add_argument("--state", help="queued, held, failed or sent")
    lp.set_defaults(handler=cmd_outbox_list)
    rp = osub.add_parser("release", help="send a held reply now, or retry a failed one")
    rp.add_argument("id", type=int, help="the reply's number, as `outbox list` shows it")
    rp.add_argument("--by", default=os.environ.get("USER", "cli"), help="who releases")
    rp.set_defaults(handler=cmd_outbox_release)


def _add_web(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="accounts for the review queue")
    asub = p.add_subparsers(required=True, metavar="ACTION")
    ap = asub.add_parser("add", help="add an agent (password from $KUNDO_GDPR_AGENT_PASSWORD "
                                     "or a prompt)")
    ap.add_argument("email")
    ap.add_argument("--admin", action="store_true", help="may approve erasure when required")
    ap.set_defaults(handler=cmd_agents_add)
    p = sub.add_parser("web", help="run the review queue web app only")
    p.set_defaults(handler=cmd_web)
    p = sub.add_parser("serve", help="run the web app and the mail loops in one process")
    p.set_defaults(handler=cmd_serve)


def _add_requests(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


# -- commands -----------------------------------------------------------------


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.service import Worker

    worker = Worker.from_config(config)
    db.upgrade(worker.engine)
    if args.once:
        worker.run_once()
        return 0

    def stop(signum: int, _frame: FrameType | None) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run_forever()
    return 0


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    import dataclasses

    from kundo_gdpr.demo import demo_agent, run_demo

    # The demo shows the whole path, so it approves what passes every check;
    # its mails are unsigned, so sender authentication is not required.
    config = dataclasses.replace(
        config,
        policy=dataclasses.replace(config.policy, auto_approve=True),
        auth=dataclasses.replace(config.auth, require=False),
    )
    rows = run_demo(config)
    print(f"{'mail':<20} {'reference':<16} {'state':<13} {'problems':<20} replies")
    for row in rows:
        print(
            f"{row.mail:<20} {row.reference:<16} {row.state:<13} {row.problems:<20} {row.replies}"
        )
    print(f"\nReplies: {config.path(config.outbox.folder.path)}")
    print(f"Database: {config.database_url()}")
    login = demo_agent(config)
    print(f"\nReview queue: run `kundo-gdpr web`, then open {login.url}")
    print(f"  sign in as {login.email} with password {login.password} (new on every demo run)")
    return 0


def cmd_parse(args: argparse.Namespace, config: Config) -> int:
    readable = 0
    for name in args.files:
        try:
            raw = Path(name).read_bytes()
            readable += 1
            parsed = parse(raw, config.service.support_addresses)
        except (OSError, ParseError) as exc:
            print(json.dumps({"file": name, "error": str(exc)}, ensure_ascii=False), flush=True)
            continue
        if args.json:
            print(parsed.to_json(name), flush=True)
        else:
            _print_parsed(name, parsed.contract())
    return 0 if readable else 1


def _print_parsed(name: str, fields: dict[str, object]) -> None:
    print(name)
    for key, value in fields.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        print(f"  {key:<11} {shown}")


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.operations import check

    outcomes = check.run(config)
    for outcome in outcomes:
        print(outcome.line())
    return 1 if any(o.problem for o in outcomes) else 0


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    db.upgrade(db.make_engine(config.database_url()))
    print("database is up to date")
    return 0


def _session(config: Config) -> Session:
    engine = db.make_engine(config.database_url())
    db.upgrade(engine)
    return db.session_factory(engine)()


def cmd_requests_list(args: argparse.Namespace, config: Config) -> int:
    with _session(config) as session:
        stmt = select(Request).order_by(Request.id.desc())
        if args.state:
            stmt = stmt.where(Request.state == args.state)
        for r in session.scalars(stmt):
            print(
                f"{r.reference:<16} {r.state:<13} {r.due_at:%Y-%m-%d} {r.sender or '-':<30} "
                f"{','.join(r.kinds) or '-':<13} {','.join(s.email for s in r.subjects) or '-'}"
            )
    return 0


def cmd_requests_show(args: argparse.Namespace, config: Config) -> int:
    with _session(config) as session:
        try:
            r = pipeline.find(session, args.reference)
        except LookupError:
            return _no_such(args.reference)
        for label, value in (
            ("reference", r.reference),
            ("state", r.state),
            ("sender", r.sender),
            ("kinds", ", ".join(r.kinds)),
            ("channels", ", ".join(r.channel_kinds)),
            ("subjects", ", ".join(s.email for s in r.subjects)),
            ("problems", ", ".join(r.problems)),
            ("received", r.received_at),
            ("due", r.due_at),
            ("result", json.dumps(r.result, ensure_ascii=False)),
        ):
            print(f"{label:<10} {value}")
        print("\nreplies:")
        replies = select(OutboundMail).where(OutboundMail.request_id == r.id)
        for m in session.scalars(replies.order_by(OutboundMail.id)):
            _print_reply(m)
        print("\naudit trail:")
        for e in audit.trail(session, r):
            print(
                f"  {e.at:%Y-%m-%d %H:%M:%S} {e.actor:<22} {e.action:<14} "
                f"{json.dumps(e.detail, ensure_ascii=False, default=str)[:200]}"
            )
    return 0


def _print_reply(m: OutboundMail) -> None:
    print(f"  #{m.id:<5} {m.purpose:<10} {m.state:<7} {m.to_addr} {m.message_id}")
    if m.state == "failed":
        print(f"         failed after {m.attempts} attempt(s): {m.last_error}")
    elif m.state == "held":
        print("         held: over the hourly reply limit; `kundo-gdpr outbox release` sends it")
    elif m.state == "queued" and m.last_error:
        when = f"{m.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        print(f"         retrying ({m.attempts} attempt(s)), next {when}: {m.last_error}")


def cmd_outbox_list(args: argparse.Namespace, config: Config) -> int:
    with _session(config) as session:
        stmt = select(OutboundMail).order_by(OutboundMail.id)
        if args.state:
            stmt = stmt.where(OutboundMail.state == args.state)
        else:
            stmt = stmt.where(OutboundMail.state != "sent")
        for m in session.scalars(stmt):
            request = session.get(Request, m.request_id) if m.request_id else None
            print(f"{request.reference if request else '-':<16}", end="")
            _print_reply(m)
    return 0


def cmd_outbox_release(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.replies.outbox import release

    with _session(config) as session, session.begin():
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


def cmd_requests_preview(args: argparse.Namespace, config: Config) -> int:
    with _session(config) as session:
        try:
            request = pipeline.find(session, args.reference)
        except LookupError:
            return _no_such(args.reference)
        for subject, by_channel in pipeline.preview(session, config, request).items():
            print(subject)
            for channel, counts in by_channel.items():
                shown = ", ".join(f"{n} {name}" for name, n in counts.items())
                print(f"  {channel:<6} {shown}")
    return 0


def cmd_requests_approve(args: argparse.Namespace, config: Config) -> int:
    return _decide(config, args.reference, lambda s, r: pipeline.approve(s, r, args.by))


def cmd_requests_reject(args: argparse.Namespace, config: Config) -> int:
    return _decide(
        config, args.reference, lambda s, r: pipeline.reject(s, config, r, args.by, args.reason)
    )


def _decide(config: Config, reference: str, action: Callable[[Session, Request], None]) -> int:
    with _session(config) as session, session.begin():
        try:
            request = pipeline.find(session, reference)
            action(session, request)
        except LookupError:
            return _no_such(reference)
        except pipeline.StateError as exc:
            print(f"kundo-gdpr: {exc}", file=sys.stderr)
            return 1
        print(f"{request.reference} is now {request.state}")
    return 0


def cmd_agents_add(args: argparse.Namespace, config: Config) -> int:
    import getpass

    from sqlalchemy.exc import IntegrityError

    from kundo_gdpr.web.auth import add_agent

    password = os.environ.get("KUNDO_GDPR_AGENT_PASSWORD") or getpass.getpass("Password: ")
    if len(password) < 10:
        print("kundo-gdpr: the password must be at least 10 characters", file=sys.stderr)
        return 1
    try:
        with _session(config) as session, session.begin():
            add_agent(session, args.email, password, is_admin=args.admin)
    except IntegrityError:
        print(f"kundo-gdpr: agent {args.email} already exists", file=sys.stderr)
        return 1
    print(f"agent {args.email.lower()} added{' as admin' if args.admin else ''}")
    return 0


def cmd_web(args: argparse.Namespace, config: Config) -> int:
    from aiohttp import web

    from kundo_gdpr.web import make_app

    engine = db.make_engine(config.database_url())
    db.upgrade(engine)
    web.run_app(make_app(config, engine), host=config.web.host, port=config.web.port)
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import threading

    from aiohttp import web

    from kundo_gdpr.service import Worker
    from kundo_gdpr.web import make_app

    worker = Worker.from_config(config)
    db.upgrade(worker.engine)
    loops = threading.Thread(target=worker.run_forever, name="mail-loops", daemon=True)
    loops.start()
    try:
        # run_app handles SIGINT/SIGTERM; the mail loops stop when it returns.
        web.run_app(make_app(config, worker.engine), host=config.web.host, port=config.web.port)
    finally:
        worker.stop.set()
        loops.join(timeout=30)
    return 0


def _no_such(reference: str) -> int:
    print(f"kundo-gdpr: no request {reference}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
