"""Erase, export and lookup on a generated desk: our engines against raw baselines.

    python benchmarks/engines.py --items 1000000 --keep /var/tmp/bench

SQLite always; PostgreSQL too when KUNDO_GDPR_TEST_DATABASE_URL is set
(throwaway databases are created and dropped; with --keep the generated
erase desk stays, for the next run of the same size). Every timed erase
commits, on a fresh copy of the generated desk (a file copy; CREATE DATABASE
… TEMPLATE), so ours (a transaction per batch) and the baseline (one
transaction) each start from the same desk, and the end state after each is
compared: the baseline is hand-written SQL with the same effect. The erases
run on one engine that outlives the copies, as a worker's does; the first
erase of it (compiling our statements) is printed apart. Each export runs in
its own process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kundo_gdpr import db, i18n
from kundo_gdpr.actions import vault
from kundo_gdpr.actions.erase import erase_subject
from kundo_gdpr.actions.export import ExportHeader, write_export
from kundo_gdpr.desk import ChannelRef, Strategy, open_desk, purge
from kundo_gdpr.desk.sql_erase import ERASED_TABLES
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
# Share of conversations with a second customer and of chats with a second visitor.
SHARED = 0.05
# One text in this many writes the subject's address.
MENTIONED = 5000
WORDS = (
    "cykel", "punktering", "leverans", "beställning", "storlek", "kvitto", "faktura", "hej",
    "tack", "svar", "fråga", "problem", "åäö", "reservdel", "kedja", "broms", "sadel", "hjul",
)


def body(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))


def text_of(rng: random.Random, subject: str = SUBJECT) -> str:
    """A body; one in `1 / MENTIONED` names the subject's address (plain, lower case)."""
    if rng.random() < 1 / MENTIONED:
        return f"{body(rng)} skriv till {subject} tack"
    return body(rng)


def bench_organization(session: Session) -> dict[str, list[int]]:
    """The benchmark's one organization and its CHANNELS channels, kinds in turn:
    the channel ids by kind."""
    org = Organization(name="Bench AB", slug="bench", language="sv")
    org.channels = [Channel(kind=("mail", "forum", "chat")[i % 3], name=f"c{i}")
                    for i in range(CHANNELS)]
    session.add(org)
    session.flush()
    by_kind: dict[str, list[int]] = {"mail": [], "forum": [], "chat": []}
    for channel in org.channels:
        by_kind[channel.kind].append(channel.id)
    return by_kind


def generate(engine: Engine, items: int, subject_items: int, seed: int = 1,
             subject: str = SUBJECT) -> None:
    """About `items` rows over 50 channels; `subject` owns ~`subject_items`.

    As on real desks, some conversations have a second customer (cc'd, or
    the subject in someone else's thread), some chats a second visitor, and
    some of others' texts write the subject's address: so the erase follows
    ownership per message and replaces mentions, and the baseline must too.
    """
    rng = random.Random(seed)
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    share = subject_items / max(items, 1)
    with Session(engine) as session, session.begin(), text_indexes_off(session.connection()):
        by_kind = bench_organization(session)

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
                          "title": "Rubrik", "body": text_of(rng), "created_at": when})
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
                             "body": text_of(rng), "created_at": when})
            messages.append({"conversation_id": n, "direction": "out", "from_addr": "support@x",
                             "from_key": "support@x", "to_addr": email, "to_key": key(email),
                             "body": "> " + body(rng), "created_at": when})
            if rng.random() < SHARED:  # a cc'd customer writes too (now and then the subject)
                cc = who()
                messages.append({"conversation_id": n, "direction": "in", "from_addr": cc,
                                 "from_key": key(cc), "to_addr": "support@x",
                                 "to_key": "support@x", "body": text_of(rng), "created_at": when})
        _insert(conn, MailConversation, conversations)
        _insert(conn, MailMessage, messages)
        sessions, chats = [], []
        for n in range(1, per_kind // 2 + 1):
            sessions.append({"id": n, "channel_id": rng.choice(by_kind["chat"]),
                             **_owner("visitor", who()), "visitor_ip": "203.0.113.1",
                             "started_at": when})
            for sender in ("visitor", "agent"):
                chats.append({"session_id": n, "sender": sender, "body": text_of(rng),
                              "sent_at": when})
            if rng.random() < SHARED:  # a second visitor in the session
                other = who()
                chats.append({"session_id": n, "sender": "visitor", **_owner("sender", other),
                              "body": text_of(rng), "sent_at": when})
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


@contextlib.contextmanager
def text_indexes_off(conn: Any) -> Iterator[None]:
    """Bulk load without the text indexes, built whole afterwards.

    Row by row, the FTS5 triggers (SQLite) and the trigram GIN indexes
    (PostgreSQL) took most of a million items' load on a busy machine; built
    once over the loaded rows they are the same indexes.
    """
    if conn.dialect.name == "sqlite":
        triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                     "AND name LIKE '%\\_fts\\_%' ESCAPE '\\'")).all()
        for name, _ in triggers:
            conn.execute(text(f"DROP TRIGGER {name}"))
        yield
        for _, sql in triggers:
            conn.execute(text(sql))
        fts = conn.scalars(text("SELECT name FROM sqlite_master "
                                "WHERE type = 'table' AND sql LIKE '%USING fts5%'")).all()
        for name in fts:
            conn.execute(text(f"INSERT INTO {name}({name}) VALUES ('rebuild')"))
        return
    indexes = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                "WHERE schemaname = current_schema() "
                                "AND indexdef LIKE '%gin_trgm_ops%'")).all()
    for name, _ in indexes:
        conn.execute(text(f"DROP INDEX {name}"))
    yield
    for _, sql in indexes:
        conn.execute(text(sql))


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
    """Hand-written set-based SQL with the same effect on the desk as our erase
    (`end_state` is compared after every run), in one transaction.

    The subject's mail and chat messages by the ownership rules (their own,
    the agents' replies to them, never another customer's); their emptied
    conversations and sessions deleted, the others kept without their name,
    address and IP; their forum posts deleted, openers others replied to
    redacted, attachments gone with them (ON DELETE CASCADE where it does it);
    then their address replaced in others' texts, found through the text index
    (FTS5 trigram / pg_trgm). It knows the generated desk: every address is
    keyed, and others' texts write the address plainly in lower case only, so
    `replace()` does what our exact matching does there. What it leaves out:
    counting, progress and resumability, names and `+tag` owners for review,
    the other written forms of an address.
    """
    with Session(engine) as session, session.begin():
        ids = ", ".join(str(c.id) for c in channels(session))
        params = {"s": subject, "post": i18n.text("sv", "redacted_post"),
                  "mention": i18n.text("sv", "redacted_mention")}
        for sql in baseline_sql(ids, engine.dialect.name, subject):
            session.execute(text(sql), params)


def baseline_sql(ids: str, dialect: str, subject: str) -> list[str]:
    """The baseline's statements, in order (see `erase_baseline`)."""
    conv = f"SELECT id FROM mail_conversations WHERE customer_key = :s AND channel_id IN ({ids})"
    sess = f"SELECT id FROM chat_sessions WHERE visitor_key = :s AND channel_id IN ({ids})"
    mine_mail = f"""
        SELECT m.id FROM mail_messages m JOIN mail_conversations c ON c.id = m.conversation_id
         WHERE m.from_key = :s AND m.direction = 'in' AND c.channel_id IN ({ids})
        UNION SELECT m.id FROM mail_messages m JOIN mail_conversations c
                ON c.id = m.conversation_id
         WHERE m.to_key = :s AND m.direction = 'out' AND c.channel_id IN ({ids})
        UNION SELECT id FROM mail_messages WHERE conversation_id IN ({conv})
           AND ((direction = 'in' AND coalesce(from_key, '') = '')
             OR (direction = 'out' AND coalesce(to_key, '') = ''))"""
    mine_chat = f"""
        SELECT m.id FROM chat_messages m JOIN chat_sessions c ON c.id = m.session_id
         WHERE m.sender_key = :s AND m.sender = 'visitor' AND c.channel_id IN ({ids})
        UNION SELECT m.id FROM chat_messages m WHERE m.session_id IN ({sess})
           AND ((m.sender = 'visitor' AND coalesce(m.sender_key, '') = '')
             OR (m.sender = 'agent' AND NOT EXISTS (
                   SELECT 1 FROM chat_messages o WHERE o.session_id = m.session_id
                      AND o.sender = 'visitor' AND coalesce(o.sender_key, '') NOT IN ('', :s))))"""
    posts = f"SELECT id FROM forum_posts WHERE author_key = :s AND channel_id IN ({ids})"
    statements = [
        f"DELETE FROM mail_messages WHERE id IN ({mine_mail})",
        f"""DELETE FROM mail_conversations WHERE id IN ({conv})
              AND NOT EXISTS (SELECT 1 FROM mail_messages m
                               WHERE m.conversation_id = mail_conversations.id)""",
        "UPDATE mail_conversations SET customer_email = NULL, customer_name = NULL, "
        f"customer_key = NULL WHERE id IN ({conv})",
        f"DELETE FROM chat_messages WHERE id IN ({mine_chat})",
        f"""DELETE FROM chat_sessions WHERE id IN ({sess})
              AND NOT EXISTS (SELECT 1 FROM chat_messages m
                               WHERE m.session_id = chat_sessions.id)""",
        "UPDATE chat_sessions SET visitor_email = NULL, visitor_name = NULL, "
        f"visitor_key = NULL, visitor_ip = NULL WHERE id IN ({sess})",
        f"DELETE FROM attachments WHERE forum_post_id IN ({posts})",
        f"""UPDATE forum_posts SET body = :post,
                   title = CASE WHEN title IS NULL THEN NULL ELSE :post END,
                   author_name = NULL, author_email = NULL, author_key = NULL, author_ip = NULL
             WHERE id IN ({posts}) AND topic_id IS NULL
               AND EXISTS (SELECT 1 FROM forum_posts r WHERE r.topic_id = forum_posts.id
                              AND coalesce(r.author_key, '') <> :s)""",
        f"DELETE FROM forum_posts WHERE id IN ({posts})",
    ]
    for table, column in (("forum_posts", "body"), ("forum_posts", "title"),
                          ("mail_conversations", "subject"), ("mail_messages", "body"),
                          ("chat_messages", "body")):
        if dialect == "sqlite":  # the FTS5 trigram table holds every searched column
            found = (f"id IN (SELECT rowid FROM {table}_fts "
                     f"WHERE {table}_fts MATCH '{column}: \"{subject}\"')")
        else:
            found = f"{column} LIKE '%{subject}%'"
        statements.append(f"UPDATE {table} SET {column} = replace({column}, :s, :mention) "
                          f"WHERE {found}")
    return statements


def row_counts(engine: Engine) -> str:
    """The rows of each table an erase touches: the cheap check, after every run."""
    with engine.connect() as conn:
        return " ".join(f"{t}:{conn.scalar(text(f'SELECT count(*) FROM {t}'))}"
                        for t in ERASED_TABLES)


def end_state(engine: Engine) -> str:
    """A digest of every row of the tables an erase touches, in id order.

    Read through the driver's own cursor: SQLAlchemy's row objects made this
    cost seconds a run at a million items.
    """
    digest = hashlib.sha256()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table in ERASED_TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY id")
            count = 0
            while rows := cursor.fetchmany(20000):
                digest.update(repr(rows).encode())
                count += len(rows)
            digest.update(f"{table}:{count}".encode())
    finally:
        raw.close()
    return digest.hexdigest()


def erase_naive(engine: Engine, sample: int) -> tuple[float, int, int]:
    """The ORM, a row at a time, a commit per row: (seconds, rows done, rows in all)."""
    with Session(engine) as session:
        ids = [c.id for c in channels(session)]
        stmt = select(ForumPost).where(ForumPost.author_key == SUBJECT,
                                       ForumPost.channel_id.in_(ids))
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        # Replies first: deleting an opener takes its replies with it (ON DELETE
        # CASCADE), and a reply loaded before that would be gone when its turn came.
        posts = list(session.scalars(
            stmt.order_by(ForumPost.topic_id.is_(None), ForumPost.id).limit(sample)))
        start = time.perf_counter()
        for post in posts:
            session.delete(post)
            session.commit()
        return time.perf_counter() - start, len(posts), int(total)


class Backend:
    """A desk database that can be copied, so every timed erase starts from the same desk.

    `reset` lays a fresh copy at one fixed place (`work`), so an engine made
    for it outlives the copies: its compiled statements stay cached, as in a
    running `serve` or `run` (SQLAlchemy caches compiled SQL per engine).
    """

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url

    def engine(self, url: str | None = None) -> Engine:
        return db.make_engine(url or self.url)

    @property
    def work(self) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def drop_work(self) -> None:
        raise NotImplementedError


class SqliteBackend(Backend):
    @property
    def work(self) -> str:
        return self.url.removesuffix(".sqlite3") + "-work.sqlite3"

    def reset(self) -> None:
        self.drop_work()
        source = Path(self.url.removeprefix("sqlite:///"))
        target = Path(self.work.removeprefix("sqlite:///"))
        for suffix in ("", "-wal"):  # with the write-ahead log, the copy is the whole desk
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
                _sync(Path(f"{target}{suffix}"))

    def drop_work(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(self.work.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


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

    @property
    def work(self) -> str:
        url = make_url(self.url)
        return url.set(database=f"{url.database}_work").render_as_string(hide_password=False)

    def reset(self) -> None:
        self.drop_work()
        with self.admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {make_url(self.work).database} "
                              f"TEMPLATE {make_url(self.url).database}"))

    def drop_work(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(self.work).database} "
                              "WITH (FORCE)"))


def on_copy(backend: Backend, work: Callable[[Engine], Any],
            engine: Engine | None = None, digest: bool = True) -> tuple[float, Any, str]:
    """Run `work` on a fresh copy of the desk: (seconds, its result, the end state:
    the digest of every row, or without `digest` the row counts).

    With `engine`, on that engine (its pool emptied first: the copy is a new
    database); otherwise on a new engine of its own, compiled cache empty.
    """
    own = engine is None
    if engine is not None:
        engine.dispose()
    backend.reset()
    engine = engine or backend.engine(backend.work)
    try:
        start = time.perf_counter()
        result = work(engine)
        took = time.perf_counter() - start
        return took, result, end_state(engine) if digest else row_counts(engine)
    finally:
        engine.dispose()
        if own:
            backend.drop_work()


def bench_erase(backend: Backend, repeat: int, sample: int) -> None:
    times: dict[str, list[float]] = {"ours": [], "baseline": [], "purge": [], "window": []}
    states: set[str] = set()
    counts: set[str] = set()
    # The first erase of a process compiles its statements: timed on its own.
    engine = backend.engine(backend.work)
    cold, purged, state = on_copy(backend, erase_ours, engine)
    cold -= purged
    states.add(state)
    for round_ in range(repeat):
        for label, work in (("ours", erase_ours), ("baseline", erase_baseline),
                            ("window", erase_window)):
            # Every row digested in the first round (a minute a run at a million
            # items on a busy machine), the rows counted in the others.
            took, purged, state = on_copy(backend, work, engine, digest=round_ == 0)
            (states if round_ == 0 else counts).add(state)
            if label == "ours":
                times["purge"].append(purged)
            if label in ("ours", "window"):
                took -= purged
            times[label].append(took)
    engine.dispose()
    backend.drop_work()
    ours, base = statistics.median(times["ours"]), statistics.median(times["baseline"])
    print(f"   erase   ours {ours * 1000:8.1f} ms   baseline {base * 1000:8.1f} ms   "
          f"speed ratio {base / ours:.2f}x (goal >= 0.5x; median of {repeat}, each on a fresh "
          "copy of the desk, commits included, statements compiled)")
    print(f"           ours, first erase of the engine (compiling its statements): "
          f"{cold * 1000:8.1f} ms   speed ratio {base / cold:.2f}x")
    print(f"           end state after ours, the baseline and the window run: "
          f"{'identical' if len(states) == 1 else 'DIFFERENT'} (digest of every row, first "
          f"round and the first erase); rows left {'equal' if len(counts) <= 1 else 'DIFFERENT'}"
          " in every later run")
    purged = statistics.median(times["purge"])
    what = ("WAL checkpoint(TRUNCATE) + FTS5 optimize" if backend.name == "SQLite"
            else "VACUUM of the touched tables")
    print(f"           after it, the purge ({what}): {purged * 1000:8.1f} ms (median)")
    window = statistics.median(times["window"])
    print(f"           with the safety window (undo_hours > 0): {window * 1000:8.1f} ms   "
          f"speed ratio {base / window:.2f}x (goal >= 0.4x; window off: {base / ours:.2f}x)")
    _, (took, done, total), _ = on_copy(backend, lambda e: erase_naive(e, sample), digest=False)
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
        for round_ in range(repeat):
            # Every other round in the opposite order, so neither side always
            # runs first (a cold server cache, a busy neighbour).
            for which in list(runs)[:: 1 if round_ % 2 == 0 else -1]:
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
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
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
    if _whole(backend.url):
        print(f"\n== {backend.name}: {items} items, the desk kept from an earlier run")
    else:
        generate(engine, items, subject_items)
        add_request(engine)
        print(f"\n== {backend.name}: {items} items generated in "
              f"{time.perf_counter() - start:.1f}s")
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


def _whole(url: str) -> bool:
    """A kept desk is whole: its request, written last, is there."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(text("SELECT count(*) FROM requests")))
    except DBAPIError:  # no such table: not even migrated
        return False
    finally:
        engine.dispose()


def backends(tmp: Path, keep: Path | None,
             desk: str) -> Iterator[tuple[Backend, str, Callable[[], None]]]:
    """Each database's backend, export desk and cleanup. With `keep`, the erase
    desk (named by its size, `desk`) is kept there or in a database of that name
    and used again by the next run of the same size."""
    kept = keep / f"{desk}.sqlite3" if keep else tmp / "bench.sqlite3"
    if keep and kept.exists() and not _whole(f"sqlite:///{kept}"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{kept}{suffix}").unlink(missing_ok=True)
    yield (SqliteBackend("SQLite", f"sqlite:///{kept}"),
           f"sqlite:///{tmp / 'export.sqlite3'}", lambda: None)
    base = os.environ.get("KUNDO_GDPR_TEST_DATABASE_URL")
    if base:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        names = [f"bench_{desk}" if keep else f"bench_{uuid.uuid4().hex[:8]}",
                 f"bench_{uuid.uuid4().hex[:8]}"]
        with admin.connect() as conn:
            for name in names:
                if not conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :n"),
                                   {"n": name}):
                    conn.execute(text(f"CREATE DATABASE {name}"))
        if keep:  # kept for the next run; a half-made one is made again
            url = make_url(base).set(database=names[0]).render_as_string(hide_password=False)
            if not _whole(url):
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE {names[0]} WITH (FORCE)"))
                    conn.execute(text(f"CREATE DATABASE {names[0]}"))
            names = names[1:]
        urls = [make_url(base).set(database=n).render_as_string(hide_password=False)
                for n in ([f"bench_{desk}"] if keep else []) + names]
        backend = PostgresBackend("PostgreSQL", urls[0], admin)

        def drop() -> None:
            with admin.connect() as conn:
                for name in names:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
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
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the generated erase desk (SQLite: in this folder; "
                        "PostgreSQL: database bench_desk_ITEMS_SUBJECTITEMS) and use it "
                        "again in the next run of the same size: a million items take "
                        "minutes to generate")
    args = parser.parse_args()
    subject_items = args.subject_items or max(args.items // 200, 10)
    desk = f"desk_{args.items}_{subject_items}"
    with tempfile.TemporaryDirectory() as tmp:
        for backend, export_url, cleanup in backends(Path(tmp), args.keep, desk):
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
