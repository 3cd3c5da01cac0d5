"""Agents' accounts: an admin ends an agent's sessions; anyone changes their password."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.models import Agent, WebSession
from kundo_gdpr.web import auth
from kundo_gdpr.web.base import AGENT, in_db, render

routes = web.RouteTableDef()
MIN_PASSWORD = 10


def _agents(session: Session) -> list[dict[str, Any]]:
    live = (select(WebSession.agent_id, func.count().label("n"),
                   func.max(WebSession.last_seen_at).label("seen"))
            .group_by(WebSession.agent_id).subquery())
    rows = session.execute(select(Agent, live.c.n, live.c.seen)
                           .outerjoin(live, live.c.agent_id == Agent.id).order_by(Agent.email))
    return [{"id": a.id, "email": a.email, "is_admin": a.is_admin, "sessions": n or 0,
             "seen": seen} for a, n, seen in rows]


@routes.get("/agents")
async def agents(request: web.Request) -> web.Response:
    current = request[AGENT]
    assert current is not None
    if not current.is_admin:
        return render(request, "agents.html", status=403, rows=[], flash=None, allowed=False)
    rows = await in_db(request, _agents)
    return render(request, "agents.html", rows=rows, flash=request.query.get("done"),
                  allowed=True)


@routes.post(r"/agents/{agent:\d+}/end-sessions")
async def end_sessions(request: web.Request) -> web.Response:
    current = request[AGENT]
    assert current is not None
    if not current.is_admin:
        raise web.HTTPForbidden(text="admins only")
    agent_id = int(request.match_info["agent"])

    def work(session: Session) -> None:
        agent = session.get(Agent, agent_id)
        if agent is None:
            raise web.HTTPNotFound()
        ended = auth.end_sessions(session, agent.id)
        audit.record(session, "sessions_ended", actor=current.email, agent=agent.email,
                     sessions=ended)

    await in_db(request, work)
    raise web.HTTPSeeOther("/agents?done=sessions_ended")


@routes.get("/account")
async def account(request: web.Request) -> web.Response:
    return render(request, "account.html", error=None)


@routes.post("/account/password")
async def change_password(request: web.Request) -> web.Response:
    """A new password ends every session of the agent, this one too: sign in again."""
    current = request[AGENT]
    assert current is not None
    form = await request.post()
    old, new = str(form.get("current", "")), str(form.get("new", ""))
    if len(new) < MIN_PASSWORD:
        return render(request, "account.html", status=400, error="password_too_short")

    def work(session: Session) -> bool:
        agent = auth.authenticate(session, current.email, old)
        if agent is None:
            audit.record(session, "password_change_refused", actor=current.email)
            return False
        ended = auth.set_password(session, agent, new)
        audit.record(session, "password_changed", actor=current.email, sessions_ended=ended)
        return True

    if not await in_db(request, work):
        return render(request, "account.html", status=400, error="password_wrong")
    response = web.HTTPSeeOther("/login?done=password_changed")
    response.del_cookie("kundo_session", path="/")
    raise response


