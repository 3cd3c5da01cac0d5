"""The pages: sign-in, the queue and the overview (one request: `request_page`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.models import utcnow
from kundo_gdpr.web import chart, client, queries, sessions, throttle
from kundo_gdpr.web.auth import authenticate
from kundo_gdpr.web.base import AGENT, CONFIG, in_db, render, set_session_cookie

routes = web.RouteTableDef()
PAGE_SIZE = 50


# -- sign-in -------------------------------------------------------------------------


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    if request[AGENT] is not None:
        raise web.HTTPSeeOther("/")
    return render(request, "login.html", error=None, done=request.query.get("done"))


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    """Sign in. Unknown address, wrong password and a slowed-down attempt get the
    same page; the typed address is not echoed, so even that cannot differ."""
    form = await request.post()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    config = request.app[CONFIG]
    address = client.address(request, config)
    names = throttle.keys(address, email)
    cap = config.web.signin_max_delay_seconds
    wait = await in_db(request, lambda s: throttle.delay(s, cap, utcnow(), *names))
    if wait:
        # One slowed-down attempt at a time per address in this process, so parallel
        # guesses queue; the counts themselves are in the database, shared by all.
        async with _address_lock(address):
            wait = await in_db(request, lambda s: throttle.delay(s, cap, utcnow(), *names))
            await asyncio.sleep(wait)
            token = await in_db(request, lambda s: _sign_in(s, email, password, address,
                                                            names, wait))
    else:
        token = await in_db(request, lambda s: _sign_in(s, email, password, address,
                                                        names, wait))
    if token is None:
        return render(request, "login.html", status=401, error="bad_login", done=None)
    response = web.HTTPSeeOther("/")
    set_session_cookie(request, response, token)
    raise response


_LOCKS: dict[str, asyncio.Lock] = {}


def _address_lock(address: str) -> asyncio.Lock:
    if len(_LOCKS) > 10_000:
        _LOCKS.clear()  # bounded memory; a lock in use is only ever re-created
    return _LOCKS.setdefault(address, asyncio.Lock())


def _sign_in(session: Session, email: str, password: str, address: str,
             names: tuple[str, str], waited: float) -> str | None:
    """The new session's cookie value, or None; the failure is counted and audited
    in the same transaction."""
    agent = authenticate(session, email, password)
    now = utcnow()
    if agent is None:
        throttle.failed(session, now, *names)
        audit.record(session, "sign_in_failed", account=email.strip()[:320], address=address,
                     delay_seconds=round(waited, 3))
        return None
    throttle.succeeded(session, names[1])
    token, _current = sessions.start(session, agent, now)
    audit.record(session, "signed_in", actor=agent.email, address=address)
    return token


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(sessions.COOKIE, "")
    actor = request[AGENT]
    assert actor is not None

    def work(session: Session) -> None:
        sessions.end(session, token)
        audit.record(session, "signed_out", actor=actor.email)

    await in_db(request, work)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(sessions.COOKIE, path="/")
    raise response


# -- lists ---------------------------------------------------------------------------


@routes.get("/")
async def queue(request: web.Request) -> web.Response:
    q = request.query
    agent = request[AGENT]
    assert agent is not None
    state = q.get("state", "")
    # An explicit state (a link from the overview) looks at every request in it.
    view = q.get("view") or ("all" if state else "open")
    query = queries.QueueQuery(
        view=view if view in queries.VIEWS else "open", state=state,
        search=q.get("q", "").strip(), due=q.get("due", ""),
        sort=q.get("sort", "due") if q.get("sort") in queries.SORTS else "due",
        descending=q.get("dir") == "desc", agent=agent.email)
    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        page = 1
    rows, total = await in_db(request, lambda s: queries.queue(s, query, page, PAGE_SIZE))
    return render(request, "queue.html", rows=rows, total=total, page=page,
                  pages=max(1, -(-total // PAGE_SIZE)), query=query,
                  states=queries.REQUEST_STATES, views=queries.VIEWS, sorts=queries.SORTS,
                  link=_queue_link(query))


def _queue_link(query: queries.QueueQuery) -> Callable[..., str]:
    """A function for the template: the queue's URL with some parameters changed."""
    def link(**changed: Any) -> str:
        params = {"view": query.view, "state": query.state, "q": query.search,
                  "due": query.due, "sort": query.sort,
                  "dir": "desc" if query.descending else "asc"}
        params.update({k: str(v) for k, v in changed.items()})
        return "/?" + str(urlencode({k: v for k, v in params.items() if v}))
    return link


@routes.get("/overview")
async def overview(request: web.Request) -> web.Response:
    data = await in_db(request, queries.overview)
    labels = [w["start"].strftime("%d/%m") for w in data["weeks"]]
    received = chart.bars(labels, [w["received"] for w in data["weeks"]])
    median = chart.bars(labels, [w["median_days"] for w in data["weeks"]], decimals=1)
    return render(request, "overview.html", o=data, received=received, median=median)


