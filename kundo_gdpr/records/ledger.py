"""The erasure ledger: what was erased, kept as keyed hashes, outside the database.

Each erasure appends one JSON line before its first batch: the time, the
request's reference, the organization, the channels (id and kind), the
strategy and the keyed hash of each subject's normalised address. The file
lives outside the database on purpose: restoring a database backup brings
erased people back, and the ledger is how `replay` finds and erases them
again. It never holds an address, and is never minimised.

Replay is set-based: the distinct owner keys of the ledger's channels are read
once and hashed once per key in use; the hashes are joined against the ledger
in memory; only the matches are erased, with the desk's own erase engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.desk import ChannelRef, Counts, DeskStore, Strategy, analyse, open_desk
from kundo_gdpr.models import Request, utcnow
from kundo_gdpr.models.queue import DONE
from kundo_gdpr.records.hashing import KeyRing, key_ring
from kundo_gdpr.vocabulary import CHANNELS, Kind

VERSION = 1


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    reference: str
    organization_id: int
    channels: tuple[tuple[int, str], ...]  # (id, kind)
    strategy: dict[str, str]
    subjects: tuple[str, ...]  # "key id:hex"


@dataclass
class Skipped:
    """Something replay could not check, said exactly."""

    code: str  # bad_line | key_missing | not_in_ledger
    count: int
    detail: list[str] = field(default_factory=list)


@dataclass
class Replayed:
    entries: int = 0
    oldest: dt.datetime | None = None
    # Per request reference: what was found and erased again.
    erased: dict[str, Counts] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


def path(config: Config) -> Path:
    return config.path(config.records.ledger_path)


def record(
    config: Config, request: Request, channels: Sequence[ChannelRef], strategy: Strategy,
    ring: KeyRing | None = None,
) -> None:
    """Append the request's erasure to the ledger, durably, before it starts."""
    ring = ring or key_ring(config)
    subjects = sorted({h for s in request.subjects if (h := ring.hash_subject(s.email))})
    line = {
        "v": VERSION,
        "at": utcnow().isoformat(),
        "reference": request.reference,
        "organization_id": request.organization_id,
        "channels": [{"id": c.id, "kind": c.kind} for c in channels],
        "strategy": dataclasses.asdict(strategy),
        "subjects": subjects,
    }
    append(path(config), [line])


def record_undo(config: Config, request: Request) -> None:
    """The request's erasure was undone: replay no longer erases it again."""
    append(path(config), [{"v": VERSION, "at": utcnow().isoformat(),
                           "reference": request.reference, "undone": True}])


def append(target: Path, lines: Iterable[dict[str, Any]]) -> None:
    """Append lines under an exclusive lock (several workers), then fsync."""
    target.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(x, ensure_ascii=True, sort_keys=True) + "\n" for x in lines)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read(target: Path, since: dt.datetime | None = None) -> tuple[list[Entry], list[int]]:
    """The ledger's entries (from `since` on), and the numbers of lines it could not read."""
    entries: list[Entry] = []
    bad: list[int] = []
    try:
        text = target.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return entries, bad
    undone: dict[str, dt.datetime] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if data.get("undone"):
                undone[str(data["reference"])] = _time(data["at"])
                continue
            entry = _entry(data)
        except (ValueError, KeyError, TypeError, AttributeError):
            bad.append(number)
            continue
        if since is None or entry.at >= since:
            entries.append(entry)
    kept = [e for e in entries if not (e.reference in undone and undone[e.reference] >= e.at)]
    return kept, bad


def _time(text: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _entry(data: dict[str, Any]) -> Entry:
    return Entry(
        at=_time(data["at"]),
        reference=str(data["reference"]),
        organization_id=int(data["organization_id"]),
        channels=tuple((int(c["id"]), str(c["kind"])) for c in data["channels"]),
        strategy={str(k): str(v) for k, v in data["strategy"].items()},
        subjects=tuple(str(s) for s in data["subjects"]),
    )


# -- replay -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    reference: str
    owner_key: str
    channels: tuple[ChannelRef, ...]
    strategy: Strategy


def replay(
    factory: sessionmaker[Session], config: Config, since: dt.datetime | None = None,
    actor: str = audit.SYSTEM,
) -> Replayed:
    """Erase again everything in the desk that the ledger says was erased."""
    ring = key_ring(config)
    entries, bad = read(path(config), since)
    report = Replayed(entries=len(entries), oldest=min((e.at for e in entries), default=None))
    if bad:
        report.skipped.append(Skipped("bad_line", len(bad), [str(n) for n in bad]))
    with factory() as session:
        # A restored database has no planner statistics yet (see db.analyse_unanalysed).
        analyse(config.desk.store, session.get_bind().engine)
        desk = open_desk(config.desk.store, session)
        matches = _matches(desk, ring, entries, report)
        _not_in_ledger(session, entries, report, since)
        session.commit()  # the key catch-up, if any
        for match in matches:
            erased = _erase(session, desk, match)
            counts = report.erased.setdefault(match.reference, {})
            _add(counts, erased)
        with session.begin():
            audit.record(session, "ledger_replayed", actor=actor, **_event(report, since))
    return report


def _matches(desk: DeskStore, ring: KeyRing, entries: Sequence[Entry],
             report: Replayed) -> list[_Match]:
    by_key: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        for subject in entry.subjects:
            by_key[subject.partition(":")[0]].append(entry)
    missing = {k: v for k, v in by_key.items() if ring.get(k) is None}
    for key_id, some in sorted(missing.items()):
        references = sorted({e.reference for e in some})
        report.skipped.append(Skipped("key_missing", len(references), [key_id, *references]))
    for entry in entries:  # every reference checked is reported, found or not
        if any(s.partition(":")[0] not in missing for s in entry.subjects):
            report.erased.setdefault(entry.reference, {})
    channels = _channels(desk, entries)
    owners: dict[str, set[int]] = defaultdict(set)  # owner key -> channel ids holding it
    for channel_id, owner in desk.owner_keys(list(channels.values())):
        owners[owner].add(channel_id)
    wanted: dict[str, list[tuple[Entry, str]]] = defaultdict(list)  # "kid:hex" -> entries
    for entry in entries:
        for subject in entry.subjects:
            wanted[subject].append((entry, subject))
    found: dict[tuple[str, str], _Match] = {}
    for key_id in by_key.keys() - missing.keys():
        hash_key = ring.get(key_id)
        assert hash_key is not None
        for owner, held_in in owners.items():
            for entry, _ in wanted.get(f"{key_id}:{hash_key.digest(owner)}", ()):
                refs = tuple(channels[c] for c, _kind in entry.channels
                             if c in held_in and c in channels)
                if refs and (entry.reference, owner) not in found:
                    found[(entry.reference, owner)] = _Match(
                        entry.reference, owner, refs, Strategy(**entry.strategy))  # type: ignore[arg-type]
    return list(found.values())


def _channels(desk: DeskStore, entries: Sequence[Entry]) -> dict[int, ChannelRef]:
    """The ledger's channels that the desk still has, in the entry's organization."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for entry in entries:
        wanted[entry.organization_id].update(c for c, _kind in entry.channels)
    refs: dict[int, ChannelRef] = {}
    for organization_id, ids in wanted.items():
        for ref in desk.organization_channels(organization_id, CHANNELS):
            if ref.id in ids:
                refs[ref.id] = ref
    return refs


def _erase(session: Session, desk: DeskStore, match: _Match) -> Counts:
    counts: Counts = {}
    for step in desk.erase(match.owner_key, match.channels, match.strategy):
        session.commit()  # each batch, as the request's erase does
        _add(counts, step.counts)
        if step.last:
            break
    session.commit()
    return counts


def _add(into: Counts, delta: Counts) -> None:
    """Add what a batch did; a count that stays zero is left out of the report."""
    for kind, items in delta.items():
        for item, n in items.items():
            if n:
                mine = into.setdefault(kind, {})
                mine[item] = mine.get(item, 0) + n


def _not_in_ledger(session: Session, entries: Sequence[Entry], report: Replayed,
                   since: dt.datetime | None) -> None:
    """Erasures the restored database knows of that the ledger does not hold:
    done before the ledger began (or before `since`), so replay cannot check them."""
    known = {e.reference for e in entries}
    done = session.execute(select(Request.reference, Request.kinds, Request.done_at)
                           .where(Request.state == DONE)).all()
    missing = sorted(ref for ref, kinds, done_at in done
                     if ref and Kind.ERASE in (kinds or []) and ref not in known
                     and (since is None or (done_at is not None and done_at >= since)))
    if missing:
        report.skipped.append(Skipped("not_in_ledger", len(missing), missing))


def _event(report: Replayed, since: dt.datetime | None) -> dict[str, Any]:
    return {
        "since": since.isoformat() if since else None,
        "entries": report.entries,
        "erased": report.erased,
        "skipped": [dataclasses.asdict(s) for s in report.skipped],
    }
