"""Undo (the safety window) on the request page; an admin's action.

The handlers read the form and pick the page; what undo does is in
`kundo_gdpr.stages.undo`, one transaction, and a refusal is recorded in its own.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from sqlalchemy.orm import Session

from kundo_gdpr.stages import decide, undo
from kundo_gdpr.stages.decide import ReviewError
from kundo_gdpr.web.base import AGENT, CONFIG, LANG, in_db
from kundo_gdpr.web.i18n import strings

routes = web.RouteTableDef()


@routes.post("/requests/{reference}/undo")
async def undo_erase(request: web.Request) -> web.Response:
    reference = request.match_info["reference"]
    agent = request[AGENT]
    assert agent is not None  # auth_middleware lets no one else through
    if not agent.is_admin:
        raise web.HTTPForbidden(text=strings(request[LANG])["error_undo_admin_only"])
    config = request.app[CONFIG]
    form = await request.post()
    reason = str(form.get("reason", "")).strip()
    page = f"/requests/{quote(reference)}"
    if not reason:
        raise web.HTTPSeeOther(f"{page}?error=reason_required")

    def work(session: Session) -> undo.UndoRefused | None:
        found = decide.find(session, reference)
        try:
            undo.undo(session, config, found, agent.email, reason)
        except undo.UndoRefused as exc:  # nothing was changed: record why, and commit that
            undo.refused(session, found, agent.email, exc)
            return exc
        return None

    try:
        failure = await in_db(request, work)
    except ReviewError as exc:
        raise web.HTTPNotFound(text=strings(request[LANG])["error_no_such_request"]) from exc
    if failure is not None:
        raise web.HTTPSeeOther(f"{page}?error=undo_{failure.reason}")
    raise web.HTTPSeeOther(page)
