"""Sign-in slow-down in the database, shared by every web process.

No account is ever locked: a lock that anyone who knows an agent's address can
trigger is a way to keep that agent out. Instead each failure slows the next
attempts from the same client address and for the same account down, and the
answer is the same for an unknown address, a wrong password and a slowed-down
attempt. The counts are rows (`SigninFailure`), so a guesser spreading attempts
over several web processes behind one proxy is slowed down by all of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kundo_gdpr.models import SigninFailure

# A key with no failure for this long starts from nothing again.
WINDOW = dt.timedelta(minutes=15)
# The first few failures are free (typos); then the delay doubles from BASE.
FREE = 3
BASE = 0.25


def keys(address: str, account: str) -> tuple[str, str]:
    """The client address's key and the typed account's key, in that order."""
    return f"addr:{address}", f"acct:{account.strip().lower()[:320]}"


def delay(session: Session, cap: float, now: dt.datetime, *names: str) -> float:
    """Seconds to wait before trying this attempt: 0 for a key's first FREE failures,
    then BASE, 2·BASE, 4·BASE … up to `cap`, by the key with the most."""
    worst = max(_recent(session, now, names).values(), default=0)
    if worst < FREE:
        return 0.0
    return float(min(cap, BASE * 2 ** min(worst - FREE, 16)))


def failed(session: Session, now: dt.datetime, *names: str) -> None:
    """Count a failure under each key, and delete rows that no longer count."""
    cutoff = now - WINDOW
    for name in names:
        _count(session, _hash(name), now, cutoff)
    # After counting, and skipping rows another sign-in has locked (they are left for
    # the next failure): waiting for those could deadlock with that sign-in's counting.
    stale = (select(SigninFailure.key_hash).where(SigninFailure.last_at < cutoff)
             .with_for_update(skip_locked=True))
    session.execute(delete(SigninFailure).where(SigninFailure.key_hash.in_(stale)))


def _count(session: Session, key_hash: str, now: dt.datetime, cutoff: dt.datetime) -> None:
    """One failure more under a key: one statement, so two processes counting the same
    key at once never lose one."""
    values = {"key_hash": key_hash, "failures": 1, "last_at": now}
    update = {"failures": case((SigninFailure.last_at < cutoff, 1),
                               else_=SigninFailure.failures + 1),
              "last_at": now}
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(SigninFailure).values(values)
        session.execute(pg.on_conflict_do_update(index_elements=["key_hash"], set_=update))
    else:
        lite = sqlite.insert(SigninFailure).values(values)
        session.execute(lite.on_conflict_do_update(index_elements=["key_hash"], set_=update))


def succeeded(session: Session, name: str) -> None:
    """The account's own count ends with a right password; the address's stays, so
    a guesser who also knows one password is not let off."""
    session.execute(delete(SigninFailure).where(SigninFailure.key_hash == _hash(name)))


def _recent(session: Session, now: dt.datetime, names: Iterable[str]) -> dict[str, int]:
    rows = session.execute(select(SigninFailure.key_hash, SigninFailure.failures).where(
        SigninFailure.key_hash.in_([_hash(n) for n in names]),
        SigninFailure.last_at >= now - WINDOW))
    return {key: failures for key, failures in rows}


def _hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()
