"""Agents' passwords and sessions' ends. (Failed sign-ins slow later ones down:
`web.throttle`; no account is ever locked.)"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kundo_gdpr.models import Agent, WebSession

_hasher = PasswordHasher()
# Verified against for an unknown address, so that it takes as long as a real one.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


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

