"""Erase, export and lookup on a generated desk: our engines against raw baselines.

    python benchmarks/engines.py --items 100000

SQLite always; PostgreSQL too when KUNDO_GDPR_TEST_DATABASE_URL is set (two
throwaway databases are created and dropped). Every timed erase commits, on a
fresh copy of the generated desk (a file copy; CREATE DATABASE … TEMPLATE), so
ours (a transaction per batch) and the baseline (one transaction) each start
from the same desk. Each export runs in its own process, so its peak RSS is
its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import Engine, create_engine, func, insert, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kundo_gdpr import db
from kundo_gdpr.actions import vault
from kundo_gdpr.actions.erase import erase_subject
from kundo_gdpr.actions.export import ExportHeader, write_export
from kundo_gdpr.desk import ChannelRef, Strategy, open_desk, purge
from kundo_gdpr.identity import key
from kundo_gdpr.models import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    ForumPost,
    InboundMail,
    MailConversation,
    MailMessage,
    Organization,
    Request,
)

SUBJECT = "subject@example.com"
# The export benchmark's subject: every item of a separate desk is theirs.
HEAVY = "heavy@example.com"
CHANNELS = 50
WORDS = (
    "cykel", "punktering", "leverans", "beställning", "storlek", "kvitto", "faktura", "hej",
    "tack", "svar", "fråga", "problem", "åäö", "reservdel", "kedja", "broms", "sadel", "hjul",
)


def body(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))


def generate(engine: Engine, items: int, subject_items: int, seed: int = 1,
             subject: str = SUBJECT) -> None:
    """About `items` rows over 50 channels; `subject` owns ~`subject_items`."""
    rng = random.Random(seed)
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    share = subject_items / max(items, 1)
    with Session(engine) as session, session.begin():
        org = Organization(name="Bench AB", slug="bench", language="sv")
        org.channels = [Channel(kind=("mail", "forum", "chat")[i % 3], name=f"c{i}")
                        for i in range(CHANNELS)]
        session.add(org)
        session.flush()
        by_kind: dict[str, list[int]] = {"mail": [], "forum": [], "chat": []}
        for channel in org.channels:
            by_kind[channel.kind].append(channel.id)

        # The subject as real desks write them: untidy spellings, one key.
        spellings = (subject, f" {subject.upper()}\t", f"Namn Namnsson <{subject}>")

        def who() -> str:
            if rng.random() < share:
                return rng.choice(spellings)
            return f"kund{rng.randint(1, 50000)}@example.net"

        conn = session.connection()
        per_kind = items // 3
        # Forum: openers and replies (a third of posts reply to an earlier opener).
        posts: list[dict[str, Any]] = []
        openers: list[int] = []
        for n in range(1, per_kind + 1):
            reply = openers and rng.random() < 0.33
            posts.append({"id": n, "channel_id": rng.choice(by_kind["forum"]),
                          "topic_id": rng.choice(openers) if reply else None,
                          **_owner("author", who()), "author_name": "Namn",
                          "author_ip": "192.0.2.1",
                          "title": "Rubrik", "body": body(rng), "created_at": when})
            if not reply:
                openers.append(n)
        # Replies must point at an opener in the same channel.
        channel_of = {p["id"]: p["channel_id"] for p in posts}
        for p in posts:
            if p["topic_id"]:
                p["channel_id"] = channel_of[p["topic_id"]]
        _insert(conn, ForumPost, posts)
        conversations, messages = [], []
        for n in range(1, per_kind // 2 + 1):
            email = who()
            conversations.append({"id": n, "channel_id": rng.choice(by_kind["mail"]),
                                  **_owner("customer", email), "customer_name": "Namn",
                                  "subject": "Fråga", "created_at": when})
            messages.append({"conversation_id": n, "direction": "in", "from_addr": email,
                             "from_key": key(email), "to_addr": "support@x", "to_key": "support@x",
                             "body": body(rng), "created_at": when})
            messages.append({"conversation_id": n, "direction": "out", "from_addr": "support@x",
                             "from_key": "support@x", "to_addr": email, "to_key": key(email),
                             "body": "> " + body(rng), "created_at": when})
        _insert(conn, MailConversation, conversations)
        _insert(conn, MailMessage, messages)
        sessions, chats = [], []
        for n in range(1, per_kind // 2 + 1):
            sessions.append({"id": n, "channel_id": rng.choice(by_kind["chat"]),
                             **_owner("visitor", who()), "visitor_ip": "203.0.113.1",
                             "started_at": when})
            for sender in ("visitor", "agent"):
                chats.append({"session_id": n, "sender": sender, "body": body(rng),
                              "sent_at": when})
        _insert(conn, ChatSession, sessions)
        _insert(conn, ChatMessage, chats)
        attachments = [{"forum_post_id": p["id"], "filename": "a.txt", "data": b"x", "size": 1}
                       for p in posts[:: 50]]
        _insert(conn, Attachment, attachments)
        if engine.dialect.name == "postgresql":
            for table in ("forum_posts", "mail_conversations", "mail_messages",
                          "chat_sessions", "chat_messages", "attachments"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT coalesce(max(id), 1) FROM {table}))"))
    settle(engine)


def settle(engine: Engine) -> None:
    """Leave the freshly loaded desk as a live one is kept, for ours and the baseline alike.

    A bulk load leaves index maintenance behind that a live desk has long
    since done, and that the first write after the load would pay for:
    FTS5's many small segments still to merge on SQLite (the first commit
    took 0.5 s at a million items), GIN pending lists still to merge and
    hint bits still to set on PostgreSQL (what autovacuum does).
    """
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            fts = conn.scalars(text("SELECT name FROM sqlite_master "
                                    "WHERE type = 'table' AND sql LIKE '%USING fts5%'")).all()
            for name in fts:
                conn.execute(text(f"INSERT INTO {name}({name}) VALUES ('optimize')"))
            conn.execute(text("ANALYZE"))
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def _owner(prefix: str, address: str) -> dict[str, Any]:
    """An owner address column and its key, as the models set them."""
    return {f"{prefix}_email": address, f"{prefix}_key": key(address)}


def _insert(conn: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 10000):
        conn.execute(insert(model), rows[start:start + 10000])


def add_request(engine: Engine) -> int:
    """An approved erase request for the subject: erase progress rows refer to it."""
    with Session(engine) as session, session.begin():
        mail = InboundMail(source="bench", sha256="0" * 64, raw=b"", size=0, state="parsed")
        request = Request(reference="GDPR-BENCH", inbound_mail=mail, kinds=["erase"],
                          state="approved", due_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
        session.add(request)
        session.flush()
        return request.id


def channels(session: Session) -> list[ChannelRef]:
    org_id = session.execute(text("SELECT id FROM organizations WHERE slug = 'bench'")).scalar()
    assert org_id is not None
    return open_desk("sql", session).organization_channels(org_id, ("mail", "forum", "chat"))


# -- erase ---------------------------------------------------------------------------


def erase_ours(engine: Engine) -> float:
    """The whole engine: a committed transaction per batch, progress row and all;
    then the purge (WAL checkpoint and FTS5 merge / VACUUM), whose seconds it returns."""
    with Session(engine) as session:
        refs = channels(session)
        request_id = session.execute(text("SELECT id FROM requests")).scalar_one()
    erase_subject(sessionmaker(engine), "sql", Strategy(), request_id, SUBJECT, refs, purge=False)
    start = time.perf_counter()
    purge("sql", engine)
    return time.perf_counter() - start


def erase_window(engine: Engine) -> float:
    """As `erase_ours`, with the safety window on: every batch's before images sealed in
    the request's vault in the batch's transaction. Returns the purge's seconds."""
    with Session(engine) as session:
        refs = channels(session)
        request_id = session.execute(text("SELECT id FROM requests")).scalar_one()
    watched = vault.watched(sessionmaker(engine), request_id, hours=72)
    erase_subject(watched, "sql", Strategy(), request_id, SUBJECT, refs, purge=False)
    start = time.perf_counter()
    purge("sql", engine)
    return time.perf_counter() - start


def erase_baseline(engine: Engine, subject: str = SUBJECT) -> None:
    """The raw set-based SQL: one transaction, a statement per table, by the keys."""
    with Session(engine) as session, session.begin():
        ids = ", ".join(str(c.id) for c in channels(session))
        s = {"s": subject}
        in_ids = f"channel_id IN ({ids})"
        conv = f"SELECT id FROM mail_conversations WHERE customer_key = :s AND {in_ids}"
        sess = f"SELECT id FROM chat_sessions WHERE visitor_key = :s AND {in_ids}"
        for sql in (
            f"DELETE FROM mail_messages WHERE conversation_id IN ({conv})",
            f"DELETE FROM mail_conversations WHERE customer_key = :s AND {in_ids}",
            f"DELETE FROM chat_messages WHERE session_id IN ({sess})",
            f"DELETE FROM chat_sessions WHERE visitor_key = :s AND {in_ids}",
            f"DELETE FROM forum_posts WHERE author_key = :s AND {in_ids}",
        ):
            session.execute(text(sql), s)


def erase_naive(engine: Engine, sample: int) -> tuple[float, int, int]:
    """The ORM, a row at a time, a commit per row: (seconds, rows done, rows in all)."""
    with Session(engine) as session:
        ids = [c.id for c in channels(session)]
        stmt = select(ForumPost).where(ForumPost.author_key == SUBJECT,
                                       ForumPost.channel_id.in_(ids))
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        posts = list(session.scalars(stmt.limit(sample)))
        start = time.perf_counter()
        for post in posts:
            session.delete(post)
            session.commit()
        return time.perf_counter() - start, len(posts), int(total)


class Backend:
    """A desk database that can be copied, so every timed erase starts from the same desk."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url

    def engine(self, url: str | None = None) -> Engine:
        return db.make_engine(url or self.url)

    def copy(self) -> str:
        raise NotImplementedError

    def drop(self, url: str) -> None:
        raise NotImplementedError


class SqliteBackend(Backend):
    def copy(self) -> str:
        source = Path(self.url.removeprefix("sqlite:///"))
        target = source.with_name(f"copy-{uuid.uuid4().hex[:6]}.sqlite3")
        for suffix in ("", "-wal"):  # with the write-ahead log, the copy is the whole desk
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
                _sync(Path(f"{target}{suffix}"))
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def _sync(path: Path) -> None:
    """Write the copy to disk before the clock starts.

    Otherwise the first WAL checkpoint of the timed erase (synchronous=NORMAL
    syncs the database file there) waits for the whole fresh copy to be
    written back, about 0.5 s at a million items: the copy's cost, not the
    erase's, and paid only by whichever run writes enough to checkpoint.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PostgresBackend(Backend):
    def __init__(self, name: str, url: str, admin: Engine) -> None:
        super().__init__(name, url)
        self.admin = admin

    def copy(self) -> str:
        source = make_url(self.url).database
        target = f"bench_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {target} TEMPLATE {source}"))
        return make_url(self.url).set(database=target).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)"))


def on_copy(backend: Backend, work: Callable[[Engine], Any]) -> tuple[float, Any]:
    url = backend.copy()
    engine = backend.engine(url)
    try:
        start = time.perf_counter()
        result = work(engine)
        return time.perf_counter() - start, result
    finally:
        engine.dispose()
        backend.drop(url)


def bench_erase(backend: Backend, repeat: int, sample: int) -> None:
    times: dict[str, list[float]] = {"ours": [], "baseline": [], "purge": [], "window": []}
    for _ in range(repeat):
        for label, work in (("ours", erase_ours), ("baseline", erase_baseline),
                            ("window", erase_window)):
            took, purged = on_copy(backend, work)
            if label == "ours":
                times["purge"].append(purged)
            if label in ("ours", "window"):
                took -= purged
            times[label].append(took)
    ours, base = statistics.median(times["ours"]), statistics.median(times["baseline"])
    print(f"   erase   ours {ours * 1000:8.1f} ms   baseline {base * 1000:8.1f} ms   "
          f"speed ratio {base / ours:.2f}x (goal >= 0.5x; median of {repeat}, each on a fresh "
          "copy of the desk, commits included)")
    purged = statistics.median(times["purge"])
    what = ("WAL checkpoint(TRUNCATE) + FTS5 optimize" if backend.name == "SQLite"
            else "VACUUM of the touched tables")
    print(f"           after it, the purge ({what}): {purged * 1000:8.1f} ms (median)")
    window = statistics.median(times["window"])
    print(f"           with the safety window (undo_hours > 0): {window * 1000:8.1f} ms   "
          f"speed ratio {base / window:.2f}x (goal >= 0.4x; window off: {base / ours:.2f}x)")
    _, (took, done, total) = on_copy(backend, lambda e: erase_naive(e, sample))
    if done:
        whole = took / done * total
        print(f"           naive ORM loop, a commit per row: {took / done * 1000:.2f} ms/row, "
              f"~{whole:.1f} s for the subject's {total} forum posts alone "
              f"(measured on {done} rows, extrapolated) = {whole / base:.0f}x the baseline's "
              "time for all their items")


# -- export ----------------------------------------------------------------------------


def export_child(url: str, which: str, folder: str) -> None:
    """Runs in its own process, so its peak RSS is the export's alone."""
    engine = db.make_engine(url)
    path = Path(folder) / f"{which}.xlsx"
    start = time.perf_counter()
    with Session(engine) as session:
        refs = channels(session)
        desk = open_desk("sql", session)
        if which == "ours":
            header = ExportHeader("GDPR-BENCH", "Bench AB", HEAVY, dt.datetime.now(dt.UTC), "en")
            rows = sum(write_export(path, header, desk, refs, path.with_suffix(".json")).values())
        elif which == "ours-xlsx":
            header = ExportHeader("GDPR-BENCH", "Bench AB", HEAVY, dt.datetime.now(dt.UTC), "en")
            rows = sum(write_export(path, header, desk, refs).values())
        else:
            rows = export_bare(desk, refs, path)
    took = time.perf_counter() - start
    print(json.dumps({"seconds": took, "rows": rows, "rss_mb": peak_rss_mb()}))


def export_bare(desk: Any, refs: list[ChannelRef], path: Path) -> int:
    """The baseline: the same rows into a bare openpyxl write-only workbook."""
    book = Workbook(write_only=True)
    rows = 0
    for sheet in desk.export(HEAVY, refs):
        ws = book.create_sheet(sheet.kind)
        ws.append(list(sheet.columns))
        for row in sheet.rows:
            ws.append([v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v for v in row])
            rows += 1
    book.save(path)
    return rows


def bench_export(url: str, repeat: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "ours-xlsx": [], "baseline": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeat):
            for which in runs:
                out = subprocess.run(
                    [sys.executable, __file__, "--export-child", url, which, folder],
                    check=True, capture_output=True, text=True).stdout
                runs[which].append(json.loads(out.strip().splitlines()[-1]))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["rss_mb"] for r in v) for k, v in runs.items()}
    rows = int(runs["ours"][0]["rows"])
    print(f"   export  ours (xlsx + JSON) {med['ours'] * 1000:8.1f} ms   "
          f"baseline (bare openpyxl) {med['baseline'] * 1000:8.1f} ms   "
          f"speed ratio {med['baseline'] / med['ours']:.2f}x (goal >= 0.75x), {rows} rows")
    print(f"           ours, xlsx only {med['ours-xlsx'] * 1000:8.1f} ms   speed ratio "
          f"{med['baseline'] / med['ours-xlsx']:.2f}x")
    print(f"           peak RSS: ours {rss['ours']:.0f} MB (goal < 200 MB), "
          f"baseline {rss['baseline']:.0f} MB (each in its own process)")


# -- lookup ------------------------------------------------------------------------------

LOOKUPS = (
    "SELECT id FROM forum_posts WHERE author_key = :s AND channel_id IN ({ids})",
    "SELECT id FROM mail_conversations WHERE customer_key = :s AND channel_id IN ({ids})",
    "SELECT id FROM chat_sessions WHERE visitor_key = :s AND channel_id IN ({ids})",
)


def lookup(engine: Engine) -> tuple[float, int, list[str]]:
    """All of the subject's items (the three item roots), timed together."""
    with Session(engine) as session:
        ids = ", ".join(str(c.id) for c in channels(session))
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    times, found, plan = [], 0, []
    with engine.connect() as conn:
        for _ in range(5):
            start = time.perf_counter()
            found = sum(len(conn.execute(text(q.format(ids=ids)), {"s": SUBJECT}).all())
                        for q in LOOKUPS)
            times.append(time.perf_counter() - start)
        for q in LOOKUPS:
            plan.append(q.split(" WHERE")[0])
            rows = conn.execute(text(prefix + q.format(ids=ids)), {"s": SUBJECT})
            plan += ["  " + " ".join(str(c) for c in row) for row in rows]
    return statistics.median(times), found, plan


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    Linux keeps ru_maxrss across fork and exec, so a child started by a big
    parent would report the parent's size; VmHWM belongs to the child's own
    address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- driver --------------------------------------------------------------------------------


def bench(backend: Backend, export_url: str, items: int, subject_items: int,
          export_items: int, repeat: int, sample: int) -> None:
    engine = backend.engine()
    db.upgrade(engine)
    start = time.perf_counter()
    generate(engine, items, subject_items)
    add_request(engine)
    print(f"\n== {backend.name}: {items} items generated in {time.perf_counter() - start:.1f}s")
    with Session(engine) as session:
        counts = open_desk("sql", session).count(SUBJECT, channels(session))
        print("   subject's items:", counts)
    took, found, plan = lookup(engine)
    print(f"   lookup  {took * 1000:.2f} ms for the subject's {found} item roots among "
          f"{items} (goal < 50 ms); plans:")
    for line in plan:
        print("     ", line)
    engine.dispose()
    bench_erase(backend, repeat, sample)
    export_engine = db.make_engine(export_url)
    db.upgrade(export_engine)
    generate(export_engine, export_items, export_items, subject=HEAVY)
    export_engine.dispose()
    bench_export(export_url, repeat)


def backends(tmp: Path) -> Iterator[tuple[Backend, str, Callable[[], None]]]:
    yield (SqliteBackend("SQLite", f"sqlite:///{tmp / 'bench.sqlite3'}"),
           f"sqlite:///{tmp / 'export.sqlite3'}", lambda: None)
    base = os.environ.get("KUNDO_GDPR_TEST_DATABASE_URL")
    if base:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        names = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f"CREATE DATABASE {name}"))
        urls = [make_url(base).set(database=n).render_as_string(hide_password=False)
                for n in names]
        backend = PostgresBackend("PostgreSQL", urls[0], admin)

        def drop() -> None:
            for url in urls:
                backend.drop(url)
            admin.dispose()

        yield backend, urls[1], drop


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--export-child":
        export_child(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--subject-items", type=int, default=None,
                        help="default: items / 200 (5,000 for a million)")
    parser.add_argument("--export-items", type=int, default=100_000,
                        help="rows of the export benchmark's subject (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None,
                        help="run one database only")
    parser.add_argument("--naive-sample", type=int, default=200,
                        help="rows the naive ORM loop deletes before extrapolating")
    args = parser.parse_args()
    subject_items = args.subject_items or max(args.items // 200, 10)
    with tempfile.TemporaryDirectory() as tmp:
        for backend, export_url, cleanup in backends(Path(tmp)):
            if args.only and backend.name.lower() != args.only:
                cleanup()
                continue
            try:
                bench(backend, export_url, args.items, subject_items, args.export_items,
                      args.repeat, args.naive_sample)
            finally:
                cleanup()


if __name__ == "__main__":
    main()
