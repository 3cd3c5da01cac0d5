"""App factory and the middlewares every page passes: session, sign-in, CSRF."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.db import session_factory
from kundo_gdpr.models import Agent
from kundo_gdpr.web import i18n
from kundo_gdpr.web.auth import SessionData, Sessions

_T = TypeVar("_T")

CONFIG = web.AppKey("config", Config)
FACTORY: web.AppKey[sessionmaker[Session]] = web.AppKey("factory")
SESSIONS = web.AppKey("sessions", Sessions)
JINJA = web.AppKey("jinja", jinja2.Environment)
SESSION = web.RequestKey("session", SessionData)
LANG = web.RequestKey("lang", str)
AGENT: web.RequestKey[Agent | None] = web.RequestKey("agent")

PUBLIC = frozenset({"/login"})
# An editor confirming a request by mail has no sign-in: the one-time token is it.
PUBLIC_PREFIXES = ("/confirm/", "/downloads/")
Handler = Any


def make_app(config: Config, engine: Engine) -> web.Application:
    from kundo_gdpr.web import confirm, downloads, health, views

    factory = session_factory(engine)
    app = web.Application(middlewares=[health.middleware(config, factory), session_middleware,
                                       auth_middleware, csrf_middleware])
    app[CONFIG] = config
    app[FACTORY] = factory
    app[SESSIONS] = Sessions(config)
    app[JINJA] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[JINJA].filters["plain"] = plain
    app.add_routes(views.routes)
    app.add_routes(confirm.routes)
    app.add_routes(downloads.routes)  # export links from done replies; no sign-in
    return app


def plain(value: Any) -> str:
    """An audit detail value as a person reads it: text as is, a list of
    words joined, anything nested as JSON. Autoescaping still applies."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def session_of(request: web.Request) -> SessionData:
    return request[SESSION]


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sessions = request.app[SESSIONS]
    request[SESSION] = sessions.load(request.cookies.get(Sessions.cookie))
    request[LANG] = i18n.choose(request)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        _set_cookies(request, exc)
        raise
    _set_cookies(request, response)
    return response


def _set_cookies(request: web.Request, response: web.StreamResponse) -> None:
    sessions = request.app[SESSIONS]
    response.set_cookie(Sessions.cookie, sessions.dump(request[SESSION]), httponly=True,
                        samesite="Strict", path="/",
                        secure=request.app[CONFIG].web.base_url.startswith("https"))
    if "lang" in request.query and request[LANG] == request.query["lang"]:
        response.set_cookie("lang", request[LANG], httponly=True, samesite="Strict", path="/")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    agent_id = session_of(request).agent_id
    request[AGENT] = None
    if agent_id is not None:
        request[AGENT] = await in_db(request, lambda s: s.get(Agent, agent_id))
    public = request.path in PUBLIC or request.path.startswith(PUBLIC_PREFIXES)
    if not public and request[AGENT] is None:
        raise web.HTTPSeeOther("/login")
    response: web.StreamResponse = await handler(request)
    return response


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        form = await request.post()
        given = str(form.get("csrf", ""))
        if not hmac.compare_digest(given.encode(), session_of(request).csrf.encode()):
            raise web.HTTPForbidden(text="CSRF token missing or wrong")
    response: web.StreamResponse = await handler(request)
    return response


async def in_db(request: web.Request, work: Callable[[Session], _T]) -> _T:
    """Run `work` in one transaction on a worker thread, off the event loop."""
    factory = request.app[FACTORY]

    def unit() -> _T:
        with factory.begin() as session:
            return work(session)

    return await asyncio.to_thread(unit)


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    lang: str = request[LANG]
    template = request.app[JINJA].get_template(name)
    html = template.render(
        t=i18n.strings(lang), lang=lang, csrf=session_of(request).csrf,
        agent=request.get(AGENT), path=request.path, **context,
    )
    return web.Response(text=html, status=status, content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'; "
                                 "script-src 'none'; style-src 'unsafe-inline'; "
                                 "frame-ancestors 'none'",
                                 "X-Content-Type-Options": "nosniff"})
