"""Erase, export and lookup on a generated desk: our engines against raw baselines.

    python benchmarks/engines.py --items 100000

SQLite always; PostgreSQL too when KUNDO_GDPR_TEST_DATABASE_URL is set (a
throwaway schema is created and dropped). Every erase runs inside a
transaction that is rolled back, so each repetition sees the same desk.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kundo_gdpr import db
from kundo_gdpr.actions.export import ExportHeader, write_export
from kundo_gdpr.desk import ChannelRef, open_desk
from kundo_gdpr.desk.sql import SqlDesk
from kundo_gdpr.models import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
)

SUBJECT = "subject@example.com"
CHANNELS = 50
WORDS = (
    "cykel", "punktering", "leverans", "beställning", "storlek", "kvitto", "faktura", "hej",
    "tack", "svar", "fråga", "problem", "åäö", "reservdel", "kedja", "broms", "sadel", "hjul",
)


def body(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))


def generate(engine: Engine, items: int, subject_items: int, seed: int = 1) -> None:
    """About `items` rows over 50 channels; the subject owns ~`subject_items`."""
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

        def who() -> str:
            return SUBJECT if rng.random() < share else f"kund{rng.randint(1, 50000)}@example.net"

        conn = session.connection()
        per_kind = items // 3
        # Forum: openers and replies (a third of posts reply to an earlier opener).
        posts: list[dict[str, Any]] = []
        openers: list[int] = []
        for n in range(1, per_kind + 1):
            reply = openers and rng.random() < 0.33
            posts.append({"id": n, "channel_id": rng.choice(by_kind["forum"]),
                          "topic_id": rng.choice(openers) if reply else None,
                          "author_email": who(), "author_name": "Namn", "author_ip": "192.0.2.1",
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
                                  "customer_email": email, "customer_name": "Namn",
                                  "subject": "Fråga", "created_at": when})
            messages.append({"conversation_id": n, "direction": "in", "from_addr": email,
                             "to_addr": "support@x", "body": body(rng), "created_at": when})
            messages.append({"conversation_id": n, "direction": "out", "from_addr": "support@x",
                             "to_addr": email, "body": "> " + body(rng), "created_at": when})
        _insert(conn, MailConversation, conversations)
        _insert(conn, MailMessage, messages)
        sessions, chats = [], []
        for n in range(1, per_kind // 2 + 1):
            sessions.append({"id": n, "channel_id": rng.choice(by_kind["chat"]),
                             "visitor_email": who(), "visitor_ip": "203.0.113.1",
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
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def _insert(conn: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 10000):
        conn.execute(insert(model), rows[start:start + 10000])


def channels(session: Session) -> list[ChannelRef]:
    org_id = session.execute(text("SELECT id FROM organizations WHERE slug = 'bench'")).scalar()
    assert org_id is not None
    return open_desk("sql", session).organization_channels(org_id, ("mail", "forum", "chat"))


def erase_ours(session: Session, refs: list[ChannelRef]) -> None:
    open_desk("sql", session).erase(SUBJECT, refs)


def erase_ours_without_mentions(session: Session, refs: list[ChannelRef]) -> None:
    """Breakdown only: the delete and redact path, with the mention scan left out."""
    desk = open_desk("sql", session)
    real = SqlDesk._mentions
    SqlDesk._mentions = lambda *args, **kwargs: {}  # type: ignore[method-assign]
    try:
        desk.erase(SUBJECT, refs)
    finally:
        SqlDesk._mentions = real  # type: ignore[method-assign]


def erase_baseline(session: Session, refs: list[ChannelRef]) -> None:
    ids = ", ".join(str(c.id) for c in refs)
    s = {"s": SUBJECT}
    in_ids = f"channel_id IN ({ids})"
    conv = f"SELECT id FROM mail_conversations WHERE lower(customer_email) = :s AND {in_ids}"
    sess = f"SELECT id FROM chat_sessions WHERE lower(visitor_email) = :s AND {in_ids}"
    for sql in (
        f"DELETE FROM mail_messages WHERE conversation_id IN ({conv})",
        f"DELETE FROM mail_conversations WHERE lower(customer_email) = :s AND {in_ids}",
        f"DELETE FROM chat_messages WHERE session_id IN ({sess})",
        f"DELETE FROM chat_sessions WHERE lower(visitor_email) = :s AND {in_ids}",
        f"DELETE FROM forum_posts WHERE lower(author_email) = :s AND {in_ids}",
    ):
        session.execute(text(sql), s)


def timed_rollback(engine: Engine, work: Callable[[Session, list[ChannelRef]], None],
                   repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with Session(engine) as session:
            refs = channels(session)
            start = time.perf_counter()
            work(session, refs)
            session.flush()
            times.append(time.perf_counter() - start)
            session.rollback()
    return statistics.median(times)


def export_ours(engine: Engine, path: Path) -> int:
    with Session(engine) as session:
        header = ExportHeader("GDPR-BENCH", "Bench AB", SUBJECT, dt.datetime.now(dt.UTC), "en")
        counts = write_export(path, header, open_desk("sql", session), channels(session))
        return sum(counts.values())


def export_baseline(engine: Engine, path: Path) -> int:
    with Session(engine) as session:
        sheets = open_desk("sql", session).export(SUBJECT, channels(session))
        book = Workbook(write_only=True)
        rows = 0
        for sheet in sheets:
            ws = book.create_sheet(sheet.kind)
            ws.append(list(sheet.columns))
            for row in sheet.rows:
                ws.append([v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v
                           for v in row])
                rows += 1
        book.save(path)
        return rows


def lookup(engine: Engine) -> tuple[float, list[str]]:
    sql = "SELECT id FROM forum_posts WHERE lower(author_email) = :s"
    explain = ("EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ") + sql
    times = []
    with engine.connect() as conn:
        for _ in range(5):
            start = time.perf_counter()
            conn.execute(text(sql), {"s": SUBJECT}).all()
            times.append(time.perf_counter() - start)
        result = conn.execute(text(explain), {"s": SUBJECT})
        plan = [" ".join(str(c) for c in row) for row in result]
    return statistics.median(times), plan


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(name: str, url: str, items: int, subject_items: int, repeat: int) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    start = time.perf_counter()
    generate(engine, items, subject_items)
    print(f"\n== {name}: {items} items generated in {time.perf_counter() - start:.1f}s")
    with Session(engine) as session:
        print("   subject's items:", open_desk("sql", session).count(SUBJECT, channels(session)))
    ours = timed_rollback(engine, erase_ours, repeat)
    base = timed_rollback(engine, erase_baseline, repeat)
    bare = timed_rollback(engine, erase_ours_without_mentions, repeat)
    print(f"   erase   ours {ours * 1000:8.1f} ms   baseline {base * 1000:8.1f} ms   "
          f"speed ratio {base / ours:.2f}x (goal >= 0.5x)")
    print(f"           ours without the mention scan {bare * 1000:8.1f} ms   "
          f"speed ratio {base / bare:.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        times: dict[str, list[float]] = {"ours": [], "baseline": []}
        rows = 0
        for _ in range(repeat):
            for label, fn in (("ours", export_ours), ("baseline", export_baseline)):
                t0 = time.perf_counter()
                rows = fn(engine, Path(tmp) / f"{label}.xlsx")
                times[label].append(time.perf_counter() - t0)
        o, b = statistics.median(times["ours"]), statistics.median(times["baseline"])
        print(f"   export  ours {o * 1000:8.1f} ms   baseline {b * 1000:8.1f} ms   "
              f"speed ratio {b / o:.2f}x (goal >= 0.75x), {rows} rows, "
              f"peak RSS {peak_rss_mb():.0f} MB")
    took, plan = lookup(engine)
    print(f"   lookup  {took * 1000:.2f} ms (goal < 50 ms); plan:")
    for line in plan:
        print("     ", line)
    engine.dispose()


def iter_backends(tmp: Path) -> Iterator[tuple[str, str, Callable[[], None]]]:
    yield "SQLite", f"sqlite:///{tmp / 'bench.sqlite3'}", lambda: None
    base = os.environ.get("KUNDO_GDPR_TEST_DATABASE_URL")
    if base:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))

        def drop() -> None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()

        sep = "&" if "?" in base else "?"
        yield "PostgreSQL", f"{base}{sep}options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--subject-items", type=int, default=None,
                        help="default: items / 200 (5,000 for a million)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    subject_items = args.subject_items or max(args.items // 200, 10)
    with tempfile.TemporaryDirectory() as tmp:
        for name, url, cleanup in iter_backends(Path(tmp)):
            try:
                bench(name, url, args.items, subject_items, args.repeat)
            finally:
                cleanup()


if __name__ == "__main__":
    main()
