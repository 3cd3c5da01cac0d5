"""What every view shares: the app and request keys, the middlewares every page
passes (headers, session, sign-in, CSRF), `in_db` and `render`. The factory is in
`web.app`."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import jinja2
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import i18n as shared_i18n
from kundo_gdpr.config import Config
from kundo_gdpr.models import utcnow
from kundo_gdpr.web import i18n, sessions
from kundo_gdpr.web.sessions import Current

_T = TypeVar("_T")

CONFIG = web.AppKey("config", Config)
FACTORY: web.AppKey[sessionmaker[Session]] = web.AppKey("factory")
JINJA = web.AppKey("jinja", jinja2.Environment)
SECRET = web.AppKey("secret", bytes)
LANG = web.RequestKey("lang", str)
ANON = web.RequestKey("anon", str)
AGENT: web.RequestKey[Current | None] = web.RequestKey("agent")

PUBLIC = frozenset({"/login", "/static/app.css", "/.well-known/kundo-gdpr-proof.pub"})
# An editor confirming a request by mail has no sign-in: the one-time token is it.
PUBLIC_PREFIXES = ("/confirm/", "/downloads/")
CSP = ("default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
Handler = Any


def plain(value: Any) -> str:
    """An audit detail value as a person reads it: text as is, a list of
    words joined, anything nested as JSON. Autoescaping still applies."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def secure(request: web.Request, response: web.StreamResponse) -> None:
    """Headers for every answer, pages, files, redirects and errors alike."""
    headers = response.headers
    cacheable = request.path == "/static/app.css" and response.status == 200
    headers["Cache-Control"] = "max-age=3600" if cacheable else "no-store"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers.setdefault("Content-Security-Policy", CSP)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        secure(request, exc)
        raise
    secure(request, response)
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is signed in (from the database), and the visitor's random cookie for CSRF."""
    request[LANG] = i18n.choose(request)
    anon = request.cookies.get(sessions.ANON_COOKIE, "")
    fresh = len(anon) < 32
    request[ANON] = secrets.token_urlsafe(32) if fresh else anon
    token = request.cookies.get(sessions.COOKIE, "")
    web_config = request.app[CONFIG].web
    request[AGENT] = (await in_db(request, lambda s: sessions.load(s, web_config, token,
                                                                   utcnow()))
                      if token else None)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        _cookies(request, exc, fresh, bool(token))
        raise
    _cookies(request, response, fresh, bool(token))
    return response


def _cookies(request: web.Request, response: web.StreamResponse, fresh: bool,
             had_token: bool) -> None:
    secure_cookie = request.app[CONFIG].web.base_url.startswith("https")
    if fresh:
        response.set_cookie(sessions.ANON_COOKIE, request[ANON], httponly=True,
                            samesite="Strict", path="/", secure=secure_cookie)
    if had_token and request[AGENT] is None and sessions.COOKIE not in response.cookies:
        response.del_cookie(sessions.COOKIE, path="/")
    if "lang" in request.query and request[LANG] == request.query["lang"]:
        response.set_cookie("lang", request[LANG], httponly=True, samesite="Strict", path="/",
                            secure=secure_cookie)


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """The signed-in cookie: no Max-Age (the server decides when it ends)."""
    response.set_cookie(sessions.COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=request.app[CONFIG].web.base_url.startswith("https"))


def is_public(request: web.Request) -> bool:
    return request.path in PUBLIC or request.path.startswith(PUBLIC_PREFIXES)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_public(request) and request[AGENT] is None:
        raise web.HTTPSeeOther("/login")
    response: web.StreamResponse = await handler(request)
    return response


def csrf_token(request: web.Request) -> str:
    current = request[AGENT]
    if current is not None:
        return current.csrf
    return sessions.anon_csrf(request.app[SECRET], request[ANON])


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        form = await request.post()
        given = str(form.get("csrf", ""))
        if not hmac.compare_digest(given.encode(), csrf_token(request).encode()):
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
    public = is_public(request)
    table = i18n.strings(lang)

    def count(key: str, n: int) -> str:
        """A counted phrase from the `<key>_one` / `<key>_other` strings."""
        return shared_i18n.plural(lang, n, {"one": table[f"{key}_one"],
                                            "other": table[f"{key}_other"]})

    html = template.render(
        t=table, lang=lang, csrf=csrf_token(request),
        agent=None if public else request.get(AGENT), path=request.path,
        count=count, days=lambda n, kind: count(f"days_{kind}", n),
        erase_sentence=lambda items, tense: shared_i18n.erase_sentence(lang, items, tense),
        export_sentence=lambda by_channel: shared_i18n.export_sentence(lang, by_channel),
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html")
