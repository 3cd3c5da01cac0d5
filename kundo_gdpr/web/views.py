"""The pages: sign-in, the queue, one request, and the decisions on it."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from kundo_gdpr import pipeline
from kundo_gdpr.models import Agent
from kundo_gdpr.web import queries
from kundo_gdpr.web.app import AGENT, CONFIG, in_db, render, session_of
from kundo_gdpr.web.auth import LockedOut, authenticate

routes = web.RouteTableDef()
PAGE_SIZE = 50


def _agent(request: web.Request) -> Agent:
    agent = request[AGENT]
    assert agent is not None  # auth_middleware lets no one else through
    return agent


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return render(request, "login.html", error=None, email="")


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    email, password = str(form.get("email", "")), str(form.get("password", ""))

    def check(session: Session) -> tuple[int | None, str | None]:
        try:
            agent = authenticate(session, email, password)
        except LockedOut:
            return None, "locked"
        return (agent.id, None) if agent else (None, "bad_login")

    agent_id, error = await in_db(request, check)
    if agent_id is None:
        return render(request, "login.html", status=401, error=error, email=email)
    data = session_of(request)
    data.agent_id = agent_id
    data.csrf = secrets.token_urlsafe(32)  # a new session gets a new token
    raise web.HTTPSeeOther("/")


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    data = session_of(request)
    data.agent_id = None
    data.csrf = secrets.token_urlsafe(32)
    raise web.HTTPSeeOther("/login")


@routes.get("/")
async def queue(request: web.Request) -> web.Response:
    state = request.query.get("state", "")
    search = request.query.get("q", "").strip()
    due = request.query.get("due", "")
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    rows, total = await in_db(
        request, lambda s: queries.queue(s, state, search, page, PAGE_SIZE, due)
    )
    return render(request, "queue.html", rows=rows, total=total, page=page,
                  pages=max(1, -(-total // PAGE_SIZE)), state=state, q=search,
                  due=due, states=queries.REQUEST_STATES, due_filters=queries.DUE_FILTERS)


@routes.get("/requests/{reference}")
async def show(request: web.Request) -> web.Response:
    reference = request.match_info["reference"]
    detail = await in_db(request, lambda s: queries.detail(s, reference))
    if detail is None:
        raise web.HTTPNotFound(text="no such request")
    return render(request, "request.html", r=detail, error=request.query.get("error"))


@routes.post("/requests/{reference}/approve")
async def approve(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    agent = _agent(request)

    def act(session: Session, r: Any) -> None:
        if "erase" in r.kinds and config.policy.erase_needs_admin and not agent.is_admin:
            raise web.HTTPForbidden(text="only an admin may approve erasure")
        pipeline.approve(session, r, agent.email)

    return await _decide(request, act)


@routes.post("/requests/{reference}/reject")
async def reject(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    agent = _agent(request)
    reason = str((await request.post()).get("reason", "")).strip()
    if not reason:
        raise _back(request, "reason_required")

    def act(session: Session, r: Any) -> None:
        pipeline.reject(session, config, r, agent.email, reason)

    return await _decide(request, act)


async def _decide(request: web.Request, act: Any) -> web.Response:
    reference = request.match_info["reference"]

    def unit(session: Session) -> str | None:
        try:
            r = pipeline.find(session, reference)
        except LookupError as exc:
            raise web.HTTPNotFound(text="no such request") from exc
        try:
            act(session, r)
        except pipeline.StateError:
            return "state"
        return None

    error = await in_db(request, unit)
    raise _back(request, error)


def _back(request: web.Request, error: str | None) -> web.HTTPSeeOther:
    url = f"/requests/{request.match_info['reference']}"
    return web.HTTPSeeOther(f"{url}?error={error}" if error else url)
