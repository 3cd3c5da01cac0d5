"""/healthz and /metrics for monitoring: off the agents' session and sign-in.

The middleware answers these two paths itself, before the session, sign-in
and CSRF middlewares run, so a scrape neither needs nor gets a session cookie.
Access needs the bearer token named by `health.token_env`; without a token
configured, only a loopback client that did not come through a proxy.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config, is_loopback
from kundo_gdpr.models import utcnow
from kundo_gdpr.operations import health, metrics

# How long /healthz waits for the database before calling it unreachable.
DB_TIMEOUT_SECONDS = 5.0
FORWARDED = ("X-Forwarded-For", "Forwarded")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(config: Config, factory: sessionmaker[Session]) -> Any:
    """The middleware that serves /healthz and /metrics; put it first."""
    views: dict[str, Handler] = {
        "/healthz": lambda request: _healthz(config, factory),
        "/metrics": lambda request: _metrics(factory),
    }

    @web.middleware
    async def ops(request: web.Request, handler: Handler) -> web.StreamResponse:
        view = views.get(request.path)
        if view is None:
            return await handler(request)
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        if not allowed(request, config.secret(config.health.token_env)):
            raise web.HTTPUnauthorized(text="bearer token required\n",
                                       headers={"WWW-Authenticate": "Bearer"})
        return await view(request)

    return ops


def allowed(request: web.Request, token: str) -> bool:
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    peer = request.remote or ""
    return is_loopback(peer) and not any(h in request.headers for h in FORWARDED)


async def _healthz(config: Config, factory: sessionmaker[Session]) -> web.Response:
    def work() -> health.Health:
        with factory() as session:
            return health.check(session, config.health, utcnow())

    try:
        found = await asyncio.wait_for(asyncio.to_thread(work), DB_TIMEOUT_SECONDS)
    except (DBAPIError, TimeoutError) as exc:
        found = health.unreachable(type(exc).__name__)
    return web.Response(text=json.dumps(found.as_dict()) + "\n",
                        status=200 if found.ok else 503, content_type="application/json")


async def _metrics(factory: sessionmaker[Session]) -> web.Response:
    def work() -> bytes:
        with factory() as session:
            return metrics.render(metrics.collect(session, utcnow()))

    body = await asyncio.to_thread(work)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
