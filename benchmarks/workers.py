"""A backlog answered by 1, 2 and 4 `kundo-gdpr run` workers on one PostgreSQL.

    .venv/bin/python benchmarks/workers.py [--mails 1000] [--workers 1,2,4]
    .venv/bin/python benchmarks/workers.py --profile 60

Starts a private PostgreSQL (initdb/pg_ctl, as the tests do), and for each
worker count a fresh database with the sample desk and a Maildir holding the
whole backlog (erasures, each of a subject of its own, and exports), then starts
that many worker processes and times until every request is done and every
reply sent (folder transport). Prints mails/s, the ratio to one worker, and
where the time went: the seconds each stage spent, summed over the workers
(from the stage counters behind /metrics). One fetcher at a time, so fetch
does not scale; the rest does as far as the machine's cores allow.

`--profile N` looks inside instead: one in-process worker over N of the same
mails under cProfile, printing the SQL statements per mail, the share of the
time spent in the database driver (sending to and waiting for PostgreSQL), and
our functions by cumulative time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from email.utils import parseaddr
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event, func, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from kundo_gdpr import db  # noqa: E402
from kundo_gdpr.desk.seed import fill_channel  # noqa: E402
from kundo_gdpr.models import Editor, OutboundMail, Request, StageStat  # noqa: E402
from kundo_gdpr.models.queue import DONE, NEEDS_REVIEW, SENT  # noqa: E402
from kundo_gdpr.stages.driver import Worker  # noqa: E402
from tests.conftest import make_config  # noqa: E402
from tests.helpers import EN_ASSERTION, SV_ASSERTION, drop, request_mail  # noqa: E402
from tests.postgres import PrivatePostgres, start_private_postgres  # noqa: E402
from tests.test_imap_smtp import write_toml  # noqa: E402
from tests.test_workers import EDITORS, EXPORTED, seeded, settled  # noqa: E402
from tests.workers import COMMAND  # noqa: E402


def backlog(count: int) -> list[bytes]:
    """Erasures (every third mail) and exports, as in the chaos test, except that
    each erasure names a subject of its own (`erased_subject`, given items by
    `add_erased_subjects`): so every request is carried out to the end whatever
    the order the workers take them in, and each run does the same work. (With a
    few subjects erased many times over, as in the chaos test, a repeated erasure
    checked after the first one ran waits for an agent instead: a run with more
    workers finished hundreds of requests early and looked 3x faster.)"""
    mails = []
    for n in range(count):
        editor = EDITORS[n % 2]
        if n % 3 == 0:
            body = (f"Hej!\n\nVår kund {erased_subject(n)} vill bli bortglömd. Radera allt i "
                    f"forum, e-post och chatt.\n\n{SV_ASSERTION}\n")
        else:
            body = (f"Hello,\n\nPlease export everything {EXPORTED[n % len(EXPORTED)]} wrote "
                    f"in mail, forum posts and chats.\n\n{EN_ASSERTION}\n")
        mails.append(request_mail(editor, body, message_id=f"<req-{n}@bench.example>"))
    return mails


def erased_subject(n: int) -> str:
    return f"raderas{n}@example.net"


def add_erased_subjects(engine: Engine, count: int) -> None:
    """Items for every subject `backlog` erases, in the editor's organization's
    channels (mail, forum, chat), as the sample desk gives its customers."""
    rng = random.Random(7)
    with db.session_factory(engine).begin() as session:
        # Each editor's channels, read once (the sample desk's editors edit their own).
        channels = [session.scalars(select(Editor).where(
            Editor.email == parseaddr(editor)[1])).one().channels for editor in EDITORS]
        for n in range(0, count, 3):
            # With someone nobody asks about, who replies in the subject's threads.
            people = ((f"Raderas {n}", erased_subject(n)),
                      (f"Svarar {n}", f"svarar{n}@example.org"))
            for channel in channels[n % 2]:
                fill_channel(session, channel, people, rng)


def finished(engine: Engine, total: int) -> bool:
    """Every request settled (as the chaos test counts it) and every reply sent.

    An erasure of a subject already erased by an earlier request finds nothing
    and waits for an agent (`subject_not_found`): settled, not done. Counted in
    SQL first, so that polling a thousand requests stays cheap."""
    with Session(engine) as session:
        states: dict[str, int] = {state: n for state, n in session.execute(
            select(Request.state, func.count()).group_by(Request.state))}
        if sum(states.values()) != total or states.get(DONE, 0) + states.get(
                NEEDS_REVIEW, 0) != total:
            return False
        waiting = session.scalars(select(Request).where(Request.state == NEEDS_REVIEW)).all()
        unsent = session.scalar(select(func.count()).select_from(OutboundMail)
                                .where(OutboundMail.state != SENT))
    return unsent == 0 and all(settled(r) for r in waiting)


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
    add_erased_subjects(engine, len(mails))
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
    db_cpu = server_cpu(pg)
    own_cpu = children_cpu()
    started = time.monotonic()
    procs = [subprocess.Popen([COMMAND, "--config", str(config), "run"],
                              env=os.environ.copy(), stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    try:
        while not finished(engine, len(mails)):
            time.sleep(0.5)
        took = time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    with Session(engine) as session:
        stages = {s.stage: s.seconds for s in session.scalars(select(StageStat))}
        states: dict[str, int] = {state: n for state, n in session.execute(
            select(Request.state, func.count()).group_by(Request.state))}
    engine.dispose()
    time.sleep(1.0)  # the workers' backends have exited and been counted by the postmaster
    return {"seconds": took, "worker_cpu": children_cpu() - own_cpu,
            "db_cpu": server_cpu(pg) - db_cpu, "done": states.get(DONE, 0),
            "waiting": states.get(NEEDS_REVIEW, 0),
            **{f"stage:{k}": v for k, v in stages.items()}}


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children: the workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_cpu(pg: PrivatePostgres) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster and its exited backends.

    A backend's CPU is added to the postmaster's children times when it exits,
    so read this when the workers have disconnected."""
    pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def profile(pg: PrivatePostgres, mails: list[bytes], folder: Path) -> None:
    engine = seeded(pg.url)
    add_erased_subjects(engine, len(mails))
    engine.dispose()
    config = make_config(folder, pg.url, policy={"auto_approve": True},
                         auth={"require": False},
                         service={"max_replies_per_sender_per_hour": 0})
    for n, raw in enumerate(mails):
        drop(config.path(config.intake.maildir.path), raw, f"mail-{n}")
    worker = Worker.from_config(config)
    statements = 0

    def counted(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(worker.engine, "before_cursor_execute", counted)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    while worker.run_once():
        pass
    profiler.disable()
    took = time.perf_counter() - started
    worker.engine.dispose()
    stats = pstats.Stats(profiler)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    driver = sum(row[2] for (path, _, _), row in table.items() if "/psycopg/" in path)
    print(f"one in-process worker, {len(mails)} mails: {took:.1f} s, {statements} SQL "
          f"statements ({statements / len(mails):.0f} per mail), {driver:.1f} s "
          f"({driver / took:.0%}) in the database driver (sending to and waiting for "
          f"PostgreSQL); load {os.getloadavg()[0]:.1f}. Ours by cumulative time:")
    ours = sorted(((row[3], path, line, name) for (path, line, name), row in table.items()
                   if "/kundo_gdpr/" in path), reverse=True)
    for cumulative, path, line, name in ours[:30]:
        where = path.split("/kundo_gdpr/")[1]
        print(f"  {cumulative:7.1f} s  {where}:{line} {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile one in-process worker over N mails instead")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    mails = backlog(args.profile or args.mails)
    gen = start_private_postgres()
    pg = next(gen)
    folder = Path(tempfile.mkdtemp(prefix="kundo-bench-workers-"))
    if args.profile:
        try:
            profile(pg, mails, folder)
        finally:
            with contextlib.suppress(StopIteration):
                next(gen)
            shutil.rmtree(folder, ignore_errors=True)
        return
    print(f"{args.mails} mails (1/3 erasures, each of a subject of its own; 2/3 exports), "
          f"PostgreSQL {pg.port}, "
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
                  f"{rate / base_rate:.2f}x one worker ({found['done']:.0f} done, "
                  f"{found['waiting']:.0f} waiting for an agent); "
                  f"CPU: workers {found['worker_cpu']:.0f} s, PostgreSQL "
                  f"{found['db_cpu']:.0f} s; load {os.getloadavg()[0]:.1f}; "
                  f"stage time summed over workers: {where}", flush=True)
    finally:
        with contextlib.suppress(StopIteration):
            next(gen)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
