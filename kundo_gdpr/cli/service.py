"""`run`, `serve`, `web` and `demo`: the long-running commands."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING

from kundo_gdpr import db
from kundo_gdpr.cli.common import Subparsers
from kundo_gdpr.config import Config
from kundo_gdpr.operations.locks import AnotherWorker, single_process

if TYPE_CHECKING:
    from kundo_gdpr.stages.driver import Worker


def add(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="fetch, process and deliver until stopped")
    p.add_argument("--once", action="store_true", help="one pass over every loop, then exit")
    p.set_defaults(handler=cmd_run, log_states=True)

    p = sub.add_parser("demo", help="seed a sample desk and run four request mails through")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("web", help="run the review queue web app only")
    p.set_defaults(handler=cmd_web)
    p = sub.add_parser("serve", help="run the web app and the mail loops in one process")
    p.set_defaults(handler=cmd_serve, log_states=True)


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.stages.driver import Worker

    worker = Worker.service(config)
    try:
        lock_file = single_process(worker.engine)  # noqa: F841 (held while we run)
    except AnotherWorker as exc:
        print(f"kundo-gdpr: {exc}", file=sys.stderr)
        return 1
    _upgrade_when_reachable(worker)
    if args.once:
        worker.run_once()
        return 0

    def stop(signum: int, _frame: FrameType | None) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run_forever()
    return 0


def _upgrade_when_reachable(worker: Worker, tries: int = 20) -> None:
    """Migrate at start-up, waiting (with the driver's backoff) for a database that
    is restarting: a worker restarted beside it must not die of it."""
    from kundo_gdpr.stages.driver import backoff
    from kundo_gdpr.stages.fetch import DB_UNAVAILABLE

    for failures in range(1, tries + 1):
        try:
            db.upgrade(worker.engine, config=worker.config)
            return
        except DB_UNAVAILABLE:
            if failures == tries:
                raise
            worker.engine.dispose()
            time.sleep(backoff(failures, worker.config.service.poll_seconds))


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


def cmd_web(args: argparse.Namespace, config: Config) -> int:
    from aiohttp import web

    from kundo_gdpr.web import make_app

    engine = db.make_engine(config.database_url())
    db.upgrade(engine, config=config)
    web.run_app(make_app(config, engine), host=config.web.host, port=config.web.port)
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import threading

    from aiohttp import web

    from kundo_gdpr.stages.driver import Worker
    from kundo_gdpr.web import make_app

    worker = Worker.service(config)
    try:
        lock_file = single_process(worker.engine)  # noqa: F841 (held while we run)
    except AnotherWorker as exc:
        print(f"kundo-gdpr: {exc}", file=sys.stderr)
        return 1
    db.upgrade(worker.engine, config=worker.config)
    loops = threading.Thread(target=worker.run_forever, name="mail-loops", daemon=True)
    loops.start()
    try:
        # run_app handles SIGINT/SIGTERM; the mail loops stop when it returns.
        web.run_app(make_app(config, worker.engine), host=config.web.host, port=config.web.port)
    finally:
        worker.stop.set()
        loops.join(timeout=30)
    return 0
