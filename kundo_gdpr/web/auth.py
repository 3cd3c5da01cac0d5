"""Agents' passwords, lock-out, and the session cookie.

The session lives in one Fernet token (AES plus HMAC), so it is signed and
encrypted; the server keeps no session table.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kundo_gdpr.config import Config
from kundo_gdpr.models import Agent, utcnow

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCK_FOR = dt.timedelta(minutes=15)
SESSION_TTL = 12 * 3600

_hasher = PasswordHasher()


class LockedOut(Exception):
    """Too many failed sign-ins; the account is locked for a while."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_agent(session: Session, email: str, password: str, is_admin: bool = False) -> Agent:
    agent = Agent(email=email.strip().lower(), password_hash=hash_password(password),
                  is_admin=is_admin, failed_logins=0)
    session.add(agent)
    session.flush()
    return agent


def authenticate(session: Session, email: str, password: str) -> Agent | None:
    """The agent whose password this is, counting failures; raises LockedOut."""
    agent = session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
    if agent is None:
        _hasher.hash(password)  # the same work as for a real account
        return None
    now = utcnow()
    if agent.locked_until is not None and agent.locked_until > now:
        raise LockedOut(agent.email)
    try:
        _hasher.verify(agent.password_hash, password)
    except VerificationError:
        agent.failed_logins += 1
        if agent.failed_logins >= MAX_FAILURES:
            agent.locked_until = now + LOCK_FOR
            agent.failed_logins = 0
            log.warning("agent %s locked out after %d failures", agent.email, MAX_FAILURES)
        return None
    agent.failed_logins = 0
    agent.locked_until = None
    return agent


@dataclass
class SessionData:
    csrf: str
    agent_id: int | None = None


class Sessions:
    """Reads and writes the session cookie."""

    cookie = "kundo_session"

    def __init__(self, config: Config) -> None:
        secret = config.secret(config.web.secret_env)
        if not secret:
            secret = secrets.token_urlsafe(32)
            log.warning("%s is not set; using a random secret, sessions end on restart",
                        config.web.secret_env)
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)

    def load(self, token: str | None) -> SessionData:
        if token:
            try:
                data = json.loads(self._fernet.decrypt(token.encode(), ttl=SESSION_TTL))
                return SessionData(csrf=str(data["csrf"]), agent_id=data.get("agent_id"))
            except (InvalidToken, ValueError, KeyError, TypeError):
                pass
        return SessionData(csrf=secrets.token_urlsafe(32))

    def dump(self, data: SessionData) -> str:
        payload = json.dumps({"csrf": data.csrf, "agent_id": data.agent_id})
        return self._fernet.encrypt(payload.encode()).decode()
