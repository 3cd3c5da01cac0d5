"""Public download of an export by the signed link in a done reply.

No sign-in: the signed, expiring link is the permission. Each export can be
fetched at most once a minute; every download and every refusal is an audit
event. Expired (or swept) exports answer 410, forged links 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.actions import links
from kundo_gdpr.models import Export, Request, utcnow
from kundo_gdpr.web import client, i18n
from kundo_gdpr.web.base import CONFIG, LANG, in_db, render

routes = web.RouteTableDef()

EVERY = dt.timedelta(minutes=1)
STATUS = {"invalid": 404, "expired": 410, "too_soon": 429}


@dataclass(frozen=True)
class Outcome:
    refused: str | None
    path: Path | None = None
    filename: str = ""
    content_type: str = ""
    retry_after: int = 0


@routes.get(links.ROUTE + "{token}")
async def download(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    verified = links.verify(config.secret(config.web.secret_env), request.match_info["token"])
    remote = client.address(request, config)
    outcome = await in_db(request, lambda s: _decide(s, verified, utcnow(), remote))
    if outcome.refused is None and outcome.path is not None:
        disposition = f'attachment; filename="{outcome.filename}"'
        return web.FileResponse(outcome.path, headers={
            "Content-Type": outcome.content_type, "Content-Disposition": disposition,
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    refused = outcome.refused or "invalid"
    response = _page(request, refused)
    if outcome.retry_after:
        response.headers["Retry-After"] = str(outcome.retry_after)
    return response


def _decide(
    session: Session, verified: tuple[int, dt.datetime] | None, now: dt.datetime, remote: str
) -> Outcome:
    if verified is None:
        audit.record(session, "export_download_refused", reason="invalid", remote=remote)
        return Outcome("invalid")
    export_id, expires_at = verified
    export = session.scalars(
        select(Export).where(Export.id == export_id).with_for_update()).one_or_none()
    if export is None:
        audit.record(session, "export_download_refused", reason="invalid", remote=remote,
                     export_id=export_id)
        return Outcome("invalid")
    request = session.get(Request, export.request_id)
    outcome = _check(export, expires_at, now)
    if outcome.refused is not None:
        audit.record(session, "export_download_refused", request=request,
                     reason=outcome.refused, remote=remote, export_id=export.id)
        return outcome
    export.last_download_at = now
    audit.record(session, "export_downloaded", request=request, remote=remote,
                 export_id=export.id, filename=export.filename)
    return Outcome(None, Path(export.path), export.filename, export.content_type)


def _check(export: Export, expires_at: dt.datetime, now: dt.datetime) -> Outcome:
    # The link's own expiry counts too: a link never outlives what it was signed for.
    if expires_at <= now or not export.kept(now):
        return Outcome("expired")
    if not Path(export.path).is_file():
        return Outcome("expired")
    if export.last_download_at is not None and now - export.last_download_at < EVERY:
        wait = EVERY - (now - export.last_download_at)
        return Outcome("too_soon", retry_after=max(1, int(wait.total_seconds()) + 1))
    return Outcome(None)


def _page(request: web.Request, refused: str) -> web.Response:
    # Both languages on the page: the person following a link may read either.
    other = "en" if request[LANG] == "sv" else "sv"
    return render(request, "download.html", status=STATUS[refused], refused=refused,
                  other=i18n.strings(other))
