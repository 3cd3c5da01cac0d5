"""Ledger replay over a generated desk, against a per-entry baseline.

    python benchmarks/ledger.py --items 1000000 --entries 1000

Generates the desk of benchmarks/engines.py (SQLite; PostgreSQL too when
KUNDO_GDPR_TEST_DATABASE_URL is set, in a throwaway database), writes a
ledger of `--entries` erasures of which `--present` name people still in the
desk (one of them the heavy subject of engines.py), and times
`kundo-gdpr ledger replay`: distinct owner keys read once, hashed once, joined
in memory, matches erased with the desk's own erase. The baseline is what a
replay without that join would do: for each ledger entry, hash every owner key
of its channels again (timed on a sample of entries, extrapolated).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.engines import SUBJECT, channels, generate
from kundo_gdpr import db
from kundo_gdpr.config import from_dict
from kundo_gdpr.desk import open_desk
from kundo_gdpr.models import ForumPost
from kundo_gdpr.records import ledger
from kundo_gdpr.records.hashing import key_ring


def write_ledger(path: Path, engine_url: str, entries: int, present: int,
                 root: Path) -> None:
    config = from_dict({"database": {"url": engine_url}}, root=root)
    ring = key_ring(config)
    engine = db.make_engine(engine_url)
    with Session(engine) as session:
        refs = channels(session)
        org_id = refs[0].organization_id
        there = [SUBJECT] + [r for r in session.scalars(
            select(ForumPost.author_email).where(ForumPost.author_email.like("kund%"))
            .distinct().limit(present - 1))]
    engine.dispose()
    lines = []
    for n in range(entries):
        subject = there[n] if n < len(there) else f"gone{n}@example.org"
        lines.append({"v": 1, "at": dt.datetime(2026, 6, 1, tzinfo=dt.UTC).isoformat(),
                      "reference": f"GDPR-2026-{n:05d}", "organization_id": org_id,
                      "channels": [{"id": c.id, "kind": c.kind} for c in refs],
                      "strategy": {"mail": "conversations", "forum": "posts", "chat": "sessions"},
                      "subjects": [ring.hash_subject(subject)]})
    ledger.append(path, lines)


def baseline(url: str, root: Path, sample: int, entries: int) -> float:
    """Per entry: every owner key of its channels hashed again (no join)."""
    config = from_dict({"database": {"url": url}}, root=root)
    ring = key_ring(config)
    engine = db.make_engine(url)
    read, _ = ledger.read(ledger.path(config))
    start = time.perf_counter()
    with Session(engine) as session:
        desk = open_desk("sql", session)
        refs = channels(session)
        for entry in read[:sample]:
            wanted = set(entry.subjects)
            for _channel, owner in desk.owner_keys(refs):
                ring.hash_subject(owner) in wanted  # noqa: B015 - the work being timed
    took = time.perf_counter() - start
    engine.dispose()
    return took / sample * entries


def run(name: str, url: str, items: int, entries: int, present: int, sample: int,
        root: Path, generated: bool = False) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    start = time.perf_counter()
    if not generated:
        generate(engine, items, max(items // 200, 10))
    engine.dispose()
    print(f"\n== {name}: {items} items {'copied' if generated else 'generated'} "
          f"in {time.perf_counter() - start:.1f}s", flush=True)
    config = from_dict({"database": {"url": url}}, root=root)
    write_ledger(ledger.path(config), url, entries, present, root)
    naive = baseline(url, root, sample, entries)
    engine = db.make_engine(url)
    start = time.perf_counter()
    report = ledger.replay(db.session_factory(engine), config)
    took = time.perf_counter() - start
    engine.dispose()
    found = {r: c for r, c in report.erased.items() if c}
    items_erased = sum(n for c in found.values() for k in c.values() for n in k.values())
    print(f"   ledger replay: {took:.1f} s for {report.entries} entries "
          f"({len(found)} found again, {items_erased} rows erased or changed; goal < 60 s)")
    print(f"   baseline (hash every owner key per entry, {sample} entries timed): "
          f"~{naive:.0f} s extrapolated; ours is {naive / took:.0f}x faster")


def kept(url: str, args: argparse.Namespace, root: Path) -> None:
    """Replay in a fresh copy of `url`'s desk, generating that desk first if it is empty."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    with Session(engine) as session:
        empty = session.scalar(select(ForumPost.id).limit(1)) is None
    if empty:
        start = time.perf_counter()
        generate(engine, args.items, max(args.items // 200, 10))
        print(f"\n{args.items} items generated into {make_url(url).database} in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    engine.dispose()
    template = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    try:
        copy = make_url(url).set(database=name).render_as_string(hide_password=False)
        run(f"PostgreSQL (a copy of {template})", copy, args.items, args.entries, args.present,
            args.sample, root, generated=True)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--present", type=int, default=10)
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--database", help="a PostgreSQL database (URL) to keep the generated "
                        "desk in: generated there once, then every run replays in a fresh "
                        "copy of it (CREATE DATABASE ... TEMPLATE), so runs start alike")
    args = parser.parse_args()
    os.environ.setdefault("KUNDO_GDPR_HASH_KEY", "benchmark key")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only != "postgresql":
            run("SQLite", f"sqlite:///{root / 'bench.sqlite3'}", args.items, args.entries,
                args.present, args.sample, root / "sqlite")
        base = os.environ.get("KUNDO_GDPR_TEST_DATABASE_URL")
        if args.database and args.only != "sqlite":
            kept(args.database, args, root / "pg")
        elif base and args.only != "sqlite":
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            name = f"bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            try:
                url = make_url(base).set(database=name).render_as_string(hide_password=False)
                run("PostgreSQL", url, args.items, args.entries, args.present, args.sample,
                    root / "pg")
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
                admin.dispose()


if __name__ == "__main__":
    main()
