"""The public key that verifies proof.json, for anyone, without sign-in."""

from __future__ import annotations

from aiohttp import web

from kundo_gdpr.records import signing
from kundo_gdpr.web.base import CONFIG

PATH = "/.well-known/kundo-gdpr-proof.pub"
routes = web.RouteTableDef()


@routes.get(PATH)
async def public_key(request: web.Request) -> web.Response:
    key = signing.private_key(request.app[CONFIG]).public_key()
    return web.Response(body=signing.public_pem(key), content_type="application/x-pem-file")
