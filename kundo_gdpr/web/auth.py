"""Agents' passwords and sign-in throttling.

No account is ever locked: a lock that anyone who knows an agent's address
can trigger is a way to keep that agent out. Instead each failure slows the
next attempts from the same client address and for the same account down
(`Throttle`), and the answer is the same for an unknown address, a wrong
password and a slowed-down attempt.
"""

from __future__ import annotations

import collections
import datetime as dt
import secrets
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kundo_gdpr.models import Agent, WebSession

_hasher = PasswordHasher()
# Verified against for an unknown address, so that it takes as long as a real one.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))

# Failures older than this no longer slow anything down.
WINDOW = dt.timedelta(minutes=15)
# The first few failures are free (typos); then the delay doubles from BASE.
FREE = 3
BASE = 0.25


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_agent(session: Session, email: str, password: str, is_admin: bool = False) -> Agent:
    agent = Agent(email=email.strip().lower(), password_hash=hash_password(password),
                  is_admin=is_admin, failed_logins=0)
    session.add(agent)
    session.flush()
    return agent


def find_agent(session: Session, email: str) -> Agent | None:
    return session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))


def set_password(session: Session, agent: Agent, password: str) -> int:
    """A new password; every session the agent has ends. Returns how many ended."""
    agent.password_hash = hash_password(password)
    return end_sessions(session, agent.id)


def end_sessions(session: Session, agent_id: int) -> int:
    """End all of an agent's sessions (signing out everywhere); how many there were."""
    result = session.execute(delete(WebSession).where(WebSession.agent_id == agent_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def authenticate(session: Session, email: str, password: str) -> Agent | None:
    """The agent whose password this is, or None. An unknown address costs the
    same Argon2 work as a known one, so the time taken does not tell them apart."""
    agent = find_agent(session, email)
    try:
        _hasher.verify(agent.password_hash if agent else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    return agent


class Throttle:
    """Recent sign-in failures per key ("addr:…", "acct:…"), in this process.

    `delay` grows with the failures of the worst key: 0 for the first FREE,
    then BASE, 2·BASE, 4·BASE … up to `cap` seconds. It only ever slows an
    attempt down; it never refuses one, so the right password always gets in.
    """

    def __init__(self, cap: float, clock: Callable[[], dt.datetime]) -> None:
        self.cap = cap
        self._clock = clock
        self._failures: dict[str, collections.deque[dt.datetime]] = {}

    def delay(self, *keys: str) -> float:
        worst = max((self._recent(k) for k in keys), default=0)
        if worst < FREE:
            return 0.0
        return float(min(self.cap, BASE * 2 ** min(worst - FREE, 16)))

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            self._failures.setdefault(key, collections.deque(maxlen=64)).append(now)

    def succeeded(self, account_key: str) -> None:
        self._failures.pop(account_key, None)

    def _recent(self, key: str) -> int:
        found = self._failures.get(key)
        if not found:
            return 0
        since = self._clock() - WINDOW
        while found and found[0] < since:
            found.popleft()
        return len(found)
