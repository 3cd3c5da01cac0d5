"""A 10-million-item desk on PostgreSQL: generated with COPY, then subject lookup and
the erase of a 5,000-item subject, our engine against the raw set-based SQL baseline.

    .venv/bin/python benchmarks/desk10m.py [--items 10000000] [--subject-items 5000]
        [--repeat 3] [--dir PATH [--keep | --reuse]]

Starts a private PostgreSQL (initdb/pg_ctl, as tests/postgres.py does) and runs
the migrations, so the desk has exactly the schema and indexes the product
creates. Then the desk's secondary indexes and foreign keys are set aside (their
definitions read from the catalog), the rows are streamed in with `COPY ... FREEZE`
(psycopg's copy support; no row inserts), and the same indexes and foreign keys
are created again from those definitions and checked against the catalog's list
from before: PostgreSQL's own advice for a bulk load ("Populating a Database"),
since building an index once over the loaded rows is many times faster than
maintaining 29 indexes (seven of them trigram GIN) row by row, and one join
validates a foreign key faster than a trigger per row. The load runs with
fsync and WAL off; the server is then restarted with fsync, full-page writes
and WAL on, as a production server runs, before anything is measured.

The desk has the shape of benchmarks/engines.py's (one organization, 50
channels; forum posts with openers and replies, mail conversations with a
message in and one out, chats with a visitor's and an agent's message, an
attachment on every 50th post), with many subjects of `--subject-items` items
each, written in three spellings of their address, each named in a few others'
messages. Each timed erase takes a subject of its own, so no desk has to be
restored between runs: ours and the baseline alternate over distinct subjects
of the same size, after one untimed warm-up of each. `--keep` leaves the
cluster in `--dir`; `--reuse` measures again on it (with the subjects not yet
erased) without generating, e.g. after a change to the engine.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.engines import (
    LOOKUPS,
    WORDS,
    add_request,
    bench_organization,
    channels,
    erase_baseline,
)
from kundo_gdpr import db
from kundo_gdpr.actions.erase import erase_subject
from kundo_gdpr.desk import Strategy, open_desk, purge
from kundo_gdpr.identity import key
from tests.postgres import DB_NAME, PrivatePostgres, _os_user, postgres_bin
from tests.servers import free_port

DESK_TABLES = ("forum_posts", "mail_conversations", "mail_messages", "chat_sessions",
               "chat_messages", "attachments")
FIRST_NAMES = ("Agnes", "Bertil", "Cecilia", "David", "Elsa", "Filip", "Greta", "Hugo",
               "Ines", "Johan", "Karin", "Lars", "Maja", "Nils", "Olga", "Per", "Rut", "Sven",
               "Tove", "Ulf")
SUPPORT = "support@bench.example"
MENTIONS = 5  # others' mail messages naming each subject (address and name)
# Loading: nothing the machine would need after a crash of its own. Measuring: a
# production server's durability (fsync, full-page writes, WAL) and memory.
LOAD = {"fsync": "off", "full_page_writes": "off", "wal_level": "minimal",
        "max_wal_senders": "0", "synchronous_commit": "off", "autovacuum": "off",
        "max_wal_size": "20GB", "checkpoint_timeout": "1h",
        "maintenance_work_mem": "1GB", "shared_buffers": "2GB"}
MEASURE = {"fsync": "on", "full_page_writes": "on", "wal_level": "replica",
           "synchronous_commit": "on", "autovacuum": "on", "max_wal_size": "4GB",
           "maintenance_work_mem": "256MB", "shared_buffers": "2GB"}


# -- the server ------------------------------------------------------------------------


@dataclass
class Server(PrivatePostgres):
    """A private cluster started with chosen settings (tests/postgres.py fixes its own)."""

    settings: dict[str, str] | None = None

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories='{self.base}' -c max_connections=50 "
                   + " ".join(f"-c {k}={v}" for k, v in (self.settings or {}).items()))
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"),
                         "-o", options, "-w", "-t", "300", "start", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start:\n{done.stderr}\n{self.log()}")

    def with_settings(self, settings: dict[str, str]) -> None:
        self.stop()
        self.settings = settings
        self.start()

    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={DB_NAME}"


def server_in(base: Path, fresh: bool) -> Server:
    binaries = postgres_bin()
    if binaries is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    user = _os_user()
    base.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    server = Server(binaries, base, free_port(), user, LOAD if fresh else MEASURE)
    if fresh:
        server.init()
    server.start()
    if fresh:
        server.create_database()
    return server


# -- what the desk holds -----------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    address: str
    name: str

    @property
    def spellings(self) -> tuple[str, str, str]:
        """As real desks write one address: untidy, one key."""
        return (self.address, f" {self.address.upper()}\t", f"{self.name} <{self.address}>")


def subjects(count: int) -> list[Person]:
    return [Person(f"{FIRST_NAMES[i % 20].lower()}.subjektsson{i // 20 or ''}@example.com",
                   f"{FIRST_NAMES[i % 20]} Subjektsson{i // 20 or ''}") for i in range(count)]


@dataclass
class Plan:
    """Which rows of each table belong to which subject, and which name one."""

    items: int
    people: list[Person]
    subject_items: int
    seed: int

    @property
    def per_kind(self) -> int:
        return self.items // 3

    def shares(self) -> tuple[int, int, int]:
        """Each subject's forum posts, conversations and chat sessions: with two
        messages in each conversation and chat, `subject_items` items in all."""
        posts = self.subject_items // 3
        conversations = self.subject_items // 6
        sessions = (self.subject_items - posts - 2 * conversations) // 2
        return posts, conversations, sessions

    def owners(self, rows: int, each: int, rng: random.Random) -> dict[int, int]:
        """Row number (1-based) -> subject index, `each` rows per subject, spread at random."""
        picked = rng.sample(range(1, rows + 1), each * len(self.people))
        return {row: n // each for n, row in enumerate(picked)}


# -- COPY ----------------------------------------------------------------------------------


def esc(value: str | None) -> str:
    """A field of COPY's text format."""
    if value is None:
        return "\\N"
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


@functools.cache
def key_of(address: str) -> str:
    found = key(address)
    assert found is not None
    return found


class Writer:
    """Lines into one COPY, sent in large chunks."""

    def __init__(self, copy: Any) -> None:
        self.copy, self.lines, self.rows = copy, list[str](), 0

    def add(self, *fields: str) -> None:
        self.lines.append("\t".join(fields) + "\n")
        if len(self.lines) >= 20000:
            self.flush()

    def flush(self) -> None:
        self.rows += len(self.lines)
        self.copy.write("".join(self.lines))
        self.lines.clear()


def copy_into(cur: psycopg.Cursor[Any], table: str, columns: str,
              fill: Callable[[Writer], None]) -> int:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FREEZE)") as copy:
        writer = Writer(copy)
        fill(writer)
        writer.flush()
    return writer.rows


def load(server: Server, plan: Plan, by_kind: dict[str, list[int]]) -> dict[str, int]:
    """Every row of the six desk tables, in one transaction (COPY FREEZE needs the
    tables truncated in it); returns the rows per table."""
    rng = random.Random(plan.seed)
    bodies = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))
              for _ in range(4096)]
    dates = [f"2026-{1 + d // 28:02d}-{1 + d % 28:02d} {d % 24:02d}:{d % 60:02d}:00+00"
             for d in range(336)]
    customers = max(plan.items // 20, 100)
    people = plan.people
    posts_each, conversations_each, sessions_each = plan.shares()
    p = plan.per_kind
    post_owner = plan.owners(p, posts_each, rng)
    conversation_owner = plan.owners(p // 2, conversations_each, rng)
    session_owner = plan.owners(p // 2, sessions_each, rng)
    free = [n for n in rng.sample(range(1, p // 2 + 1), len(people) * (MENTIONS + 1))
            if n not in conversation_owner]
    mentioned = {n: i // MENTIONS for i, n in enumerate(free[:len(people) * MENTIONS])}

    def owner(found: int | None, rng: random.Random) -> tuple[str, str]:
        if found is None:
            n = rng.randint(1, customers)
            return f"kund{n}@example.net", f"Kund {n}"
        person = people[found]
        return rng.choice(person.spellings), person.name

    def forum(w: Writer) -> None:
        rng = random.Random(plan.seed + 1)
        forum_ids, openers = by_kind["forum"], list[int]()
        channel_of = [0] * (p + 1)
        for n in range(1, p + 1):
            topic = openers[rng.randrange(len(openers))] if openers and rng.random() < 0.33 \
                else None
            channel_of[n] = channel_of[topic] if topic else rng.choice(forum_ids)
            if topic is None:
                openers.append(n)
            email, name = owner(post_owner.get(n), rng)
            w.add(str(n), str(channel_of[n]), str(topic) if topic else "\\N", "\\N", esc(name),
                  esc(email), esc(key_of(email)), "192.0.2.1", f"Rubrik {n % 97}",
                  bodies[rng.randrange(4096)], dates[n % 336])

    # Each conversation's customer, so that its messages carry the same address:
    # a customer number, or -(subject * 3 + spelling + 1).
    customer = array("i", [0]) * (p // 2 + 1)

    def conversations(w: Writer) -> None:
        rng = random.Random(plan.seed + 2)
        for n in range(1, p // 2 + 1):
            found = conversation_owner.get(n)
            if found is None:
                customer[n] = rng.randint(1, customers)
                name = f"Kund {customer[n]}"
            else:
                customer[n] = -(found * 3 + rng.randrange(3) + 1)
                name = people[found].name
            email = email_of(n)
            w.add(str(n), str(rng.choice(by_kind["mail"])), esc(name), esc(email),
                  esc(key_of(email)), f"Fråga {n % 89}", dates[n % 336])

    def email_of(n: int) -> str:
        if (who := customer[n]) > 0:
            return f"kund{who}@example.net"
        return people[(-who - 1) // 3].spellings[(-who - 1) % 3]

    def messages(w: Writer) -> None:
        rng = random.Random(plan.seed + 3)
        for n in range(1, p // 2 + 1):
            email = email_of(n)
            body = bodies[rng.randrange(4096)]
            if n in mentioned:
                person = people[mentioned[n]]
                body += f" Min kollega {person.name} ({person.address}) har samma problem."
            w.add(str(2 * n - 1), str(n), "in", esc(email), SUPPORT, esc(key_of(email)),
                  SUPPORT, esc(body), dates[n % 336])
            w.add(str(2 * n), str(n), "out", SUPPORT, esc(email), SUPPORT, esc(key_of(email)),
                  "> " + bodies[rng.randrange(4096)], dates[n % 336])

    def sessions(w: Writer) -> None:
        rng = random.Random(plan.seed + 4)
        for n in range(1, p // 2 + 1):
            email, name = owner(session_owner.get(n), rng)
            w.add(str(n), str(rng.choice(by_kind["chat"])), esc(name), esc(email),
                  esc(key_of(email)), "203.0.113.1", dates[n % 336])

    def chats(w: Writer) -> None:
        rng = random.Random(plan.seed + 5)
        for n in range(1, p // 2 + 1):
            for m, sender in ((2 * n - 1, "visitor"), (2 * n, "agent")):
                w.add(str(m), str(n), sender, "\\N", "\\N", bodies[rng.randrange(4096)],
                      dates[n % 336])

    def attachments(w: Writer) -> None:
        for m, n in enumerate(range(1, p + 1, 50), start=1):
            w.add(str(m), str(n), "\\N", "\\N", "a.txt", "text/plain", "\\\\x78", "1")

    tables: dict[str, tuple[str, Callable[[Writer], None]]] = {
        "forum_posts": ("id, channel_id, topic_id, parent_id, author_name, author_email, "
                        "author_key, author_ip, title, body, created_at", forum),
        "mail_conversations": ("id, channel_id, customer_name, customer_email, customer_key, "
                               "subject, created_at", conversations),
        "mail_messages": ("id, conversation_id, direction, from_addr, to_addr, from_key, "
                          "to_key, body, created_at", messages),
        "chat_sessions": ("id, channel_id, visitor_name, visitor_email, visitor_key, "
                          "visitor_ip, started_at", sessions),
        "chat_messages": ("id, session_id, sender, sender_email, sender_key, body, sent_at",
                          chats),
        "attachments": ("id, forum_post_id, mail_message_id, chat_message_id, filename, "
                        "content_type, data, size", attachments),
    }

    def group(names: tuple[str, ...]) -> dict[str, int]:
        # A transaction per table: COPY FREEZE needs its table truncated in it.
        done = {}
        with psycopg.connect(server.conninfo()) as conn:
            for table in names:
                columns, fill = tables[table]
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(f"TRUNCATE {table}")
                    done[table] = copy_into(cur, table, columns, fill)
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT coalesce(max(id), 1) FROM {table}))")
        return done

    # Three connections: the server's parsing and writing is most of a COPY's work,
    # and the machine has more than one core (the Python side is a third of it).
    groups = (("forum_posts", "attachments"), ("mail_conversations", "mail_messages"),
              ("chat_sessions", "chat_messages"))
    rows: dict[str, int] = {}
    with ThreadPoolExecutor(len(groups)) as pool:
        for done in pool.map(group, groups):
            rows.update(done)
    return rows


# -- indexes and foreign keys set aside for the load ----------------------------------------


@dataclass(frozen=True)
class Aside:
    indexes: list[tuple[str, str]]  # (name, CREATE INDEX ...)
    foreign_keys: list[tuple[str, str, str]]  # (table, name, definition)


INDEXES = """
SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relname = ANY(%s) AND NOT EXISTS (
    SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid AND c.conrelid = t.oid)
ORDER BY i.relname
"""
FOREIGN_KEYS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2
"""


def catalog(cur: psycopg.Cursor[Any]) -> Aside:
    tables = list(DESK_TABLES)
    indexes = [(r[0], r[1]) for r in cur.execute(INDEXES, [tables]).fetchall()]
    fks = [(r[0], r[1], r[2]) for r in cur.execute(FOREIGN_KEYS, [tables]).fetchall()]
    return Aside(indexes, fks)


def set_aside(server: Server) -> Aside:
    """The migrations' secondary indexes and foreign keys on the desk tables, dropped."""
    with psycopg.connect(server.conninfo()) as conn, conn.cursor() as cur:
        aside = catalog(cur)
        for table, name, _ in aside.foreign_keys:
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for name, _ in aside.indexes:
            cur.execute(f"DROP INDEX {name}")
    return aside


def put_back(server: Server, aside: Aside) -> dict[str, float]:
    """The same indexes and foreign keys again; the catalog must then list what it did.

    Two index builds at a time, one per core; the trigram GIN indexes (most of the
    time) first, so the two connections finish together."""
    took = {"btree": 0.0, "gin": 0.0, "foreign keys": 0.0}
    ordered = sorted(aside.indexes, key=lambda i: " USING gin " not in i[1])

    def build(conn: psycopg.Connection[Any], definition: str) -> None:
        start = time.perf_counter()
        conn.execute(definition)
        took["gin" if " USING gin " in definition else "btree"] += time.perf_counter() - start

    def builder(start: int) -> None:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '1GB'")
            for _, definition in ordered[start::2]:
                build(conn, definition)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(builder, (0, 1)))
    with psycopg.connect(server.conninfo(), autocommit=True) as conn, conn.cursor() as cur:
        start = time.perf_counter()
        for table, name, definition in aside.foreign_keys:
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        took["foreign keys"] = time.perf_counter() - start
        if catalog(cur) != aside:
            raise RuntimeError("the desk's indexes differ from the migrations' after the load")
    return took


# -- generation ------------------------------------------------------------------------------


def generate(server: Server, plan: Plan) -> None:
    engine = db.make_engine(server.url)
    db.upgrade(engine)
    with Session(engine) as session, session.begin():
        by_kind = bench_organization(session)
    add_request(engine)
    engine.dispose()
    started = time.perf_counter()
    aside = set_aside(server)
    rows = load(server, plan, by_kind)
    copied = time.perf_counter() - started
    start = time.perf_counter()
    built = put_back(server, aside)
    building = time.perf_counter() - start
    start = time.perf_counter()
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    vacuumed = time.perf_counter() - start
    total = time.perf_counter() - started
    items = rows["forum_posts"] + rows["mail_messages"] + rows["chat_messages"]
    print(f"generated {items:,} items ({sum(rows.values()):,} rows: "
          + ", ".join(f"{t} {n:,}" for t, n in rows.items()) + f") in {total:.0f} s: "
          f"COPY {copied:.0f} s ({sum(rows.values()) / copied:,.0f} rows/s), "
          f"{len(aside.indexes)} indexes and {len(aside.foreign_keys)} foreign keys "
          f"{building:.0f} s (two builds at a time; summed: btree {built['btree']:.0f} s, "
          f"trigram GIN {built['gin']:.0f} s, foreign keys {built['foreign keys']:.0f} s), "
          f"VACUUM ANALYZE {vacuumed:.0f} s", flush=True)


def migrate(server: Server) -> None:
    """A kept desk brought to the migrations of the code measured now (an index
    a newer migration adds is built here, over the whole desk)."""
    engine = db.make_engine(server.url)
    start = time.perf_counter()
    db.upgrade(engine)
    engine.dispose()
    print(f"migrations brought up to date in {time.perf_counter() - start:.1f} s", flush=True)


# -- measuring -----------------------------------------------------------------------------


def lookup(engine: Engine, person: Person) -> tuple[float, float, int]:
    """The subject's item roots by the normalised keys (first run, median of 7 after)."""
    with Session(engine) as session:
        ids = ", ".join(str(c.id) for c in channels(session))
    subject = key_of(person.address)
    times, found = [], 0
    with engine.connect() as conn:
        for _ in range(8):
            start = time.perf_counter()
            found = sum(len(conn.execute(text(q.format(ids=ids)), {"s": subject}).all())
                        for q in LOOKUPS)
            times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:]), found


def desk_count(engine: Engine, person: Person) -> tuple[float, dict[str, Any]]:
    """What the request page shows before an erase: the desk's count, mentions and all."""
    with Session(engine) as session:
        refs = channels(session)
        start = time.perf_counter()
        counts = open_desk("sql", session).count(person.address, refs)
        return time.perf_counter() - start, counts


def erase_ours(engine: Engine, person: Person) -> None:
    with Session(engine) as session:
        refs = channels(session)
        request_id = session.execute(text("SELECT id FROM requests")).scalar_one()
    erase_subject(sessionmaker(engine), "sql", Strategy(), request_id, person.address, refs,
                  purge=False)


def remaining(engine: Engine, person: Person) -> int:
    return lookup(engine, person)[2]


def measure(server: Server, people: list[Person], repeat: int, purged: bool) -> None:
    engine = db.make_engine(server.url)
    try:
        left = [p for p in people if remaining(engine, p) > 0]
        if len(left) < 2 * repeat + 2:
            raise SystemExit(f"only {len(left)} subjects left to erase; "
                             f"{2 * repeat + 2} needed (generate with more --subjects)")
        first, warm, found = lookup(engine, left[0])
        print(f"lookup of a subject by the normalised keys (forum posts, conversations, "
              f"chats): {warm * 1000:.1f} ms median of 7 ({first * 1000:.1f} ms the first "
              f"time), {found} item roots; goal < 50 ms", flush=True)
        took, counts = desk_count(engine, left[0])
        print(f"the desk's count for the request page (items, mentions, names): "
              f"{took * 1000:.0f} ms: {json.dumps(counts)}", flush=True)
        times: dict[str, list[float]] = {"ours": [], "baseline": []}
        runs: list[tuple[str, Callable[[Engine, Person], None]]] = [
            ("ours", erase_ours),
            ("baseline", lambda e, p: erase_baseline(e, key_of(p.address)))]
        for round_ in range(repeat + 1):
            for (label, work), person in zip(runs, left[2 * round_:2 * round_ + 2], strict=True):
                before = remaining(engine, person)
                start = time.perf_counter()
                work(engine, person)
                took = time.perf_counter() - start
                assert remaining(engine, person) == 0, (label, person)
                note = "warm-up, not counted" if round_ == 0 else f"run {round_}"
                print(f"   erase {label:8} {took * 1000:8.0f} ms  {person.address} "
                      f"({before} item roots; {note})", flush=True)
                if round_:
                    times[label].append(took)
        ours, base = statistics.median(times["ours"]), statistics.median(times["baseline"])
        print(f"erase of a subject: ours "
              f"{ours * 1000:.0f} ms, baseline {base * 1000:.0f} ms, speed ratio "
              f"{base / ours:.2f}x (goal >= 0.5x; median of {repeat}, each on a subject of "
              "its own, commits included)", flush=True)
        if not purged:
            return
        start = time.perf_counter()
        purge("sql", engine)
        print(f"then the purge a worker runs after an erase (VACUUM of the six desk tables): "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    finally:
        engine.dispose()


# -- driver ----------------------------------------------------------------------------------


def disk(path: Path) -> str:
    done = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True)
    return done.stdout.split()[0] if done.returncode == 0 else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--subject-items", type=int, default=5000)
    parser.add_argument("--subjects", type=int, default=16,
                        help="subjects generated; each timed erase uses one up (default 16: "
                             "two measurements of --repeat 3 with their warm-ups)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None,
                        help="the cluster's folder (default: a fresh temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster in --dir")
    parser.add_argument("--reuse", action="store_true",
                        help="measure on the cluster already in --dir, without generating")
    parser.add_argument("--no-purge", action="store_true",
                        help="skip timing the purge (VACUUM) after the erases")
    args = parser.parse_args()
    if (args.keep or args.reuse) and args.dir is None:
        parser.error("--keep and --reuse need --dir")
    base = args.dir or Path(tempfile.mkdtemp(prefix="kundo-desk10m-"))
    fresh = not args.reuse
    if fresh and (base / "data").exists():
        parser.error(f"{base} already holds a cluster: --reuse it, or remove it")
    print(f"PostgreSQL desk benchmark, {os.cpu_count()} CPUs, load "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()), flush=True)
    server = server_in(base, fresh)
    plan = Plan(args.items, subjects(args.subjects), args.subject_items, args.seed)
    try:
        if fresh:
            generate(server, plan)
            server.with_settings(MEASURE)
        else:
            migrate(server)
        print(f"cluster {base}: {disk(base / 'data')} on disk; measured with "
              + ", ".join(f"{k}={v}" for k, v in MEASURE.items()), flush=True)
        measure(server, plan.people, args.repeat, not args.no_purge)
        print("load " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    finally:
        server.stop()
        if not args.keep and not args.reuse:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
