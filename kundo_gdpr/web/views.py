"""The pages: sign-in, the queue, the overview, one request, and the actions on it.

Handlers only read the form and pick the page; what an action does is in
`kundo_gdpr.stages.decide`, one transaction per action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.models import Request, utcnow
from kundo_gdpr.stages import decide
from kundo_gdpr.stages.decide import Actor, ReviewError
from kundo_gdpr.web import chart, queries, sessions
from kundo_gdpr.web.auth import authenticate
from kundo_gdpr.web.base import AGENT, CONFIG, LANG, THROTTLE, in_db, render, set_session_cookie
from kundo_gdpr.web.i18n import finding_text, strings

routes = web.RouteTableDef()
PAGE_SIZE = 50
REF = "/requests/{reference}"
# Refusals that are about who the agent is, not about the request: 403.
FORBIDDEN = frozenset({"admin_only"})
Action = Callable[[Session, Request, Actor, dict[str, Any]], object]


def _actor(request: web.Request) -> Actor:
    agent = request[AGENT]
    assert agent is not None  # auth_middleware lets no one else through
    return Actor(agent.email, agent.is_admin)


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
    address = request.remote or ""
    account = email.strip().lower()[:320]
    keys = (f"addr:{address}", f"acct:{account}")
    throttle = request.app[THROTTLE]
    wait = throttle.delay(*keys)
    if wait:
        # One slowed-down attempt at a time per address, so parallel guesses queue.
        async with _address_lock(address):
            await asyncio.sleep(throttle.delay(*keys))
            token = await in_db(request, lambda s: _sign_in(s, email, password, address))
    else:
        token = await in_db(request, lambda s: _sign_in(s, email, password, address))
    if token is None:
        throttle.failed(*keys)
        return render(request, "login.html", status=401, error="bad_login", done=None)
    throttle.succeeded(keys[1])
    response = web.HTTPSeeOther("/")
    set_session_cookie(request, response, token)
    raise response


_LOCKS: dict[str, asyncio.Lock] = {}


def _address_lock(address: str) -> asyncio.Lock:
    if len(_LOCKS) > 10_000:
        _LOCKS.clear()  # bounded memory; a lock in use is only ever re-created
    return _LOCKS.setdefault(address, asyncio.Lock())


def _sign_in(session: Session, email: str, password: str, address: str) -> str | None:
    agent = authenticate(session, email, password)
    if agent is None:
        audit.record(session, "sign_in_failed", account=email.strip()[:320], address=address)
        return None
    token, _current = sessions.start(session, agent, utcnow())
    audit.record(session, "signed_in", actor=agent.email, address=address)
    return token


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(sessions.COOKIE, "")
    actor = _actor(request)

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


@routes.get("/overview")
async def overview(request: web.Request) -> web.Response:
    data = await in_db(request, queries.overview)
    labels = [w["start"].strftime("%d/%m") for w in data["weeks"]]
    received = chart.bars(labels, [w["received"] for w in data["weeks"]])
    median = chart.bars(labels, [w["median_days"] for w in data["weeks"]], decimals=1)
    return render(request, "overview.html", o=data, received=received, median=median)


# -- one request -----------------------------------------------------------------------


@routes.get(REF)
async def show(request: web.Request) -> web.Response:
    return await _page(request, request.query.get("error"))


async def _page(request: web.Request, error: str | None, status: int = 200) -> web.Response:
    reference = request.match_info["reference"]
    config = request.app[CONFIG]
    detail = await in_db(request, lambda s: queries.detail(s, config, reference))
    if detail is None:
        raise web.HTTPNotFound(text=strings(request[LANG])["error_no_such_request"])
    known = error if error and f"error_{error}" in strings(request[LANG]) else None
    for f in detail["findings"]:
        f["text"] = finding_text(request[LANG], f["code"], f["args"])
    return render(request, "request.html", status=status, r=detail, error=known,
                  kinds=decide.KINDS, channel_names=decide.CHANNELS,
                  can_correct=detail["state"] in decide.CORRECTABLE,
                  max_months=decide.MAX_EXTENSION_MONTHS)


@routes.post(REF + "/approve")
async def approve(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return await _act(request, lambda s, r, a, f: decide.approve(s, config, r, a))


@routes.post(REF + "/reject")
async def reject(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return await _act(
        request, lambda s, r, a, f: decide.reject(s, config, r, a, str(f.get("reason", "")))
    )


@routes.post(REF + "/correct")
async def correct(request: web.Request) -> web.Response:
    config = request.app[CONFIG]

    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> None:
        fix = decide.parse_correction(str(form.get("subjects", "")), form.get("kinds", []),
                                      form.get("channels", []))
        decide.correct(session, config, r, actor, fix)

    return await _act(request, act)


@routes.post(REF + "/recheck")
async def recheck(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return await _act(request, lambda s, r, a, f: decide.recheck(s, config, r, a))


@routes.post(REF + "/extend")
async def extend(request: web.Request) -> web.Response:
    config = request.app[CONFIG]

    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> None:
        try:
            months = int(str(form.get("months", "")))
        except ValueError as exc:
            raise ReviewError("extension_too_long") from exc
        decide.extend_deadline(session, config, r, actor, months, str(form.get("reason", "")))

    return await _act(request, act)


@routes.post(REF + r"/replies/{reply:\d+}/resend")
async def resend(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    reply = int(request.match_info["reply"])
    return await _act(request, lambda s, r, a, f: decide.resend(s, config, r, a, reply))


@routes.get(REF + r"/exports/{export:\d+}")
async def download(request: web.Request) -> web.StreamResponse:
    """The export file, for a signed-in agent only (the auth middleware sees to that)."""
    reference = request.match_info["reference"]
    export_id = int(request.match_info["export"])
    actor = _actor(request)

    def fetch(session: Session) -> tuple[Path, str] | str:
        try:
            r = decide.find(session, reference)
            export = decide.kept_export(session, r, export_id)
        except ReviewError as exc:
            return exc.code
        path = Path(export.path)
        if not path.is_file():
            return "export_gone"
        decide.record_download(session, r, export, actor)
        return path, export.filename

    found = await in_db(request, fetch)
    if isinstance(found, str):
        text = strings(request[LANG])[f"error_{found}"]
        raise web.HTTPGone(text=text) if found == "export_gone" else web.HTTPNotFound(text=text)
    path, filename = found
    return web.FileResponse(path, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
    })


async def _act(request: web.Request, action: Action) -> web.Response:
    """Run one action in one transaction, then show the request again.

    A refusal rolls the transaction back and shows why; success redirects,
    so a reload does not repeat the action.
    """
    reference = request.match_info["reference"]
    actor = _actor(request)
    form = await request.post()
    fields: dict[str, Any] = {k: form.get(k) for k in form if k not in ("kinds", "channels")}
    fields["kinds"] = [str(v) for v in form.getall("kinds", [])]
    fields["channels"] = [str(v) for v in form.getall("channels", [])]

    def unit(session: Session) -> None:
        action(session, decide.find(session, reference), actor, fields)

    try:
        await in_db(request, unit)
    except ReviewError as exc:
        if exc.code == "no_such_request":
            raise web.HTTPNotFound(text=strings(request[LANG])["error_no_such_request"]) from exc
        if exc.code in FORBIDDEN:
            return await _page(request, exc.code, status=403)
        raise web.HTTPSeeOther(f"/requests/{quote(reference)}?error={exc.code}") from exc
    raise web.HTTPSeeOther(f"/requests/{quote(reference)}")
