"""A backlog answered by 1, 2 and 4 `kundo-gdpr run` workers on one PostgreSQL.

    .venv/bin/python benchmarks/workers.py [--mails 1000] [--workers 1,2,4]

Starts a private PostgreSQL (initdb/pg_ctl, as the tests do), and for each
worker count a fresh database with the sample desk and a Maildir holding the
whole backlog (erasures and exports mixed, as in the chaos test), then starts
that many worker processes and times until every request is done and every
reply sent (folder transport). Prints mails/s, the ratio to one worker, and
where the time went: the seconds each stage spent, summed over the workers
(from the stage counters behind /metrics). One fetcher at a time, so fetch
does not scale; the rest does as far as the machine's cores allow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from kundo_gdpr import db  # noqa: E402
from kundo_gdpr.models import OutboundMail, Request, StageStat  # noqa: E402
from kundo_gdpr.models.queue import DONE, SENT  # noqa: E402
from tests.helpers import drop  # noqa: E402
from tests.postgres import PrivatePostgres, start_private_postgres  # noqa: E402
from tests.test_imap_smtp import write_toml  # noqa: E402
from tests.test_workers import request_mails, seeded  # noqa: E402
from tests.workers import COMMAND  # noqa: E402


def finished(engine: Engine, total: int) -> bool:
    with Session(engine) as session:
        done = session.scalar(select(func.count()).select_from(Request)
                              .where(Request.state == DONE))
        sent = session.scalar(select(func.count()).select_from(OutboundMail)
                              .where(OutboundMail.state == SENT))
    return done == total and sent == 2 * total


def one_run(
    pg: PrivatePostgres, workers: int, mails: list[bytes], folder: Path
) -> dict[str, float]:
    name = f"bench_{workers}"
    admin = pg.url.rsplit("/", 1)[0] + "/postgres"
    eng = db.make_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    eng.dispose()
    url = pg.url.rsplit("/", 1)[0] + f"/{name}"
    engine = seeded(url)
    base = folder / name
    for n, raw in enumerate(mails):
        drop(base / "inbox", raw, f"mail-{n}")
    config = base / "config.toml"
    write_toml(config, {
        "database": {"url": url},
        "service": {"poll_seconds": 1, "max_replies_per_sender_per_hour": 0},
        "intake": {"maildir": {"path": str(base / "inbox")}},
        "outbox": {"folder": {"path": str(base / "outbox")}},
        "export": {"path": str(base / "exports")},
        "policy": {"auto_approve": True},
        "auth": {"require": False},
    })
    started = time.monotonic()
    procs = [subprocess.Popen([COMMAND, "--config", str(config), "run"],
                              env=os.environ.copy(), stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    try:
        while not finished(engine, len(mails)):
            time.sleep(0.2)
        took = time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    with Session(engine) as session:
        stages = {s.stage: s.seconds for s in session.scalars(select(StageStat))}
    engine.dispose()
    return {"seconds": took, **{f"stage:{k}": v for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    mails = request_mails(args.mails)
    gen = start_private_postgres()
    pg = next(gen)
    folder = Path(tempfile.mkdtemp(prefix="kundo-bench-workers-"))
    print(f"{args.mails} mails (1/3 erasures, 2/3 exports), PostgreSQL {pg.port}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    base_rate = 0.0
    try:
        for workers in counts:
            found = one_run(pg, workers, mails, folder)
            rate = args.mails / found["seconds"]
            base_rate = base_rate or rate
            stages = sorted(((k[6:], v) for k, v in found.items() if k.startswith("stage:")),
                            key=lambda kv: -kv[1])
            where = ", ".join(f"{k} {v:.1f} s" for k, v in stages)
            print(f"{workers} worker(s): {found['seconds']:.1f} s, {rate:.2f} mails/s, "
                  f"{rate / base_rate:.2f}x one worker; stage time summed over workers: {where}")
    finally:
        with contextlib.suppress(StopIteration):
            next(gen)


if __name__ == "__main__":
    main()
