"""The editor's confirmation page: GET shows a button, only POST confirms.

Mail scanners fetch links to look at them, so a GET must never confirm.
No agent sign-in: the one-time token in the path is the credential. The
form still carries the session's CSRF token like every other form here.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import Session

from kundo_gdpr.stages import confirm
from kundo_gdpr.web.base import CONFIG, LANG, in_db, render

routes = web.RouteTableDef()
STATUS = {"unknown": 404, "used": 410, "expired": 410}


@routes.get("/confirm/{token}")
async def confirm_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        found = await in_db(request, lambda s: confirm.pending(s, token))
    except confirm.ConfirmError as exc:
        return _refused(request, token, exc.reason)
    if "lang" not in request.query:
        request[LANG] = found.language
    return render(request, "confirm.html", state="ask", token=token, reference=found.reference,
                  expires=found.expires_at.strftime("%Y-%m-%d %H:%M"))


@routes.post("/confirm/{token}")
async def confirm_post(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    config = request.app[CONFIG]

    def work(session: Session) -> tuple[str, str]:
        done = confirm.confirm_token(session, config, token)
        return done.reference or "", done.language

    try:
        reference, language = await in_db(request, work)
    except confirm.ConfirmError as exc:
        return _refused(request, token, exc.reason)
    if "lang" not in request.query:
        request[LANG] = language
    return render(request, "confirm.html", state="done", token=token, reference=reference)


def _refused(request: web.Request, token: str, reason: str) -> web.Response:
    return render(request, "confirm.html", status=STATUS[reason], state=reason, token=token,
                  reference="")
