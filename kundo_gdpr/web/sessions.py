"""Sessions on the server: the cookie holds a random id, the database its hash.

A session ends when the agent signs out, changes their password, or an admin
ends it; after `web.session_idle_minutes` without a request; and after
`web.session_max_hours` in any case. The cookie itself never changes, so
using it does not extend its life beyond those limits.

Visitors who are not signed in (the sign-in form, an editor's confirmation
page) get no row: their CSRF token is an HMAC of a random cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kundo_gdpr.config import WebConfig
from kundo_gdpr.models import Agent, WebSession

COOKIE = "kundo_session"
ANON_COOKIE = "kundo_anon"
# last_seen_at is written at most this often, not on every request.
TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Current:
    """The signed-in agent of one request and the session's CSRF token."""

    agent_id: int
    email: str
    is_admin: bool
    csrf: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, agent: Agent, now: dt.datetime) -> tuple[str, Current]:
    """A new session for `agent`: the cookie value (shown once, never stored) and its data."""
    token = secrets.token_urlsafe(32)
    row = WebSession(token_hash=token_hash(token), agent_id=agent.id,
                     csrf=secrets.token_urlsafe(32), created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return token, Current(agent.id, agent.email, agent.is_admin, row.csrf)


def load(session: Session, web: WebConfig, token: str, now: dt.datetime) -> Current | None:
    """The live session this cookie names, or None; an expired one is deleted."""
    if not token:
        return None
    found = session.execute(
        select(WebSession, Agent).join(Agent, Agent.id == WebSession.agent_id)
        .where(WebSession.token_hash == token_hash(token))).first()
    if found is None:
        return None
    row, agent = found
    idle = dt.timedelta(minutes=web.session_idle_minutes)
    longest = dt.timedelta(hours=web.session_max_hours)
    if now - row.last_seen_at > idle or now - row.created_at > longest:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return Current(agent.id, agent.email, agent.is_admin, row.csrf)


def end(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash(token)))


def anon_csrf(secret: bytes, anon: str) -> str:
    """The CSRF token of a visitor who is not signed in, bound to their random cookie."""
    return hmac.new(secret, b"csrf:" + anon.encode(), hashlib.sha256).hexdigest()
