"""The app factory: the agents' pages, the editors' confirmation and download
links, on the middlewares of `web.base`."""

from __future__ import annotations

import secrets
from pathlib import Path

import jinja2
from aiohttp import web
from sqlalchemy import Engine

from kundo_gdpr.config import Config
from kundo_gdpr.db import session_factory
from kundo_gdpr.vocabulary import CHANNELS, KINDS, ChannelKind, Kind
from kundo_gdpr.web import (
    admin,
    confirm,
    downloads,
    health,
    logs,
    proofkey,
    request_page,
    safety,
    views,
)
from kundo_gdpr.web.base import (
    CONFIG,
    FACTORY,
    JINJA,
    SECRET,
    auth_middleware,
    csrf_middleware,
    headers_middleware,
    plain,
    session_middleware,
)

STATIC = Path(__file__).parent / "static"


def make_app(config: Config, engine: Engine) -> web.Application:
    factory = session_factory(engine)
    app = web.Application(middlewares=[headers_middleware, health.middleware(config, factory),
                                       session_middleware, auth_middleware, csrf_middleware])
    app[CONFIG] = config
    app[FACTORY] = factory
    secret = config.secret(config.web.secret_env) or secrets.token_urlsafe(32)
    app[SECRET] = secret.encode()
    app[JINJA] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[JINJA].filters["plain"] = plain
    # The words for kinds and channels, so no template spells out its own list.
    app[JINJA].globals.update(Kind=Kind, ChannelKind=ChannelKind, KINDS=KINDS, CHANNELS=CHANNELS)
    app.add_routes(views.routes)
    app.add_routes(request_page.routes)
    app.add_routes(admin.routes)
    app.add_routes(safety.routes)  # undo within the safety window
    app.add_routes(confirm.routes)
    app.add_routes(downloads.routes)  # export links from done replies; no sign-in
    app.add_routes(proofkey.routes)  # the key that verifies proof.json; no sign-in
    app.router.add_get("/static/app.css", stylesheet)
    logs.cut_tokens_from_access_log()
    return app


async def stylesheet(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "app.css", headers={"Content-Type": "text/css"})
