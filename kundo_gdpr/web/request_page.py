"""One request: its page, the approval's confirmation page, and the actions on it.

Handlers only read the form and pick the page; what an action does is in
`kundo_gdpr.stages.decide`, one transaction per action. Every action that works
redirects to the request page with `?done=<what happened>`, and the page says
in words what happened and what comes next.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr import audit
from kundo_gdpr.models import Request
from kundo_gdpr.stages import decide
from kundo_gdpr.stages.decide import Actor, ReviewError
from kundo_gdpr.vocabulary import Kind
from kundo_gdpr.web import events, queries
from kundo_gdpr.web.base import AGENT, CONFIG, LANG, in_db, render
from kundo_gdpr.web.i18n import finding_text, strings

routes = web.RouteTableDef()
REF = "/requests/{reference}"
# Refusals that are about who the agent is, not about the request: 403.
FORBIDDEN = frozenset({"admin_only", "admin_only_large", "second_agent_needed",
                       "download_admins_only"})
# A refused form shown again with what the agent typed, instead of a redirect.
KEEP_TYPED = frozenset({"invalid_address", "invalid_choice", "typed_address"})
Action = Callable[[Session, Request, Actor, dict[str, Any]], str]


def actor_of(request: web.Request) -> Actor:
    agent = request[AGENT]
    assert agent is not None  # auth_middleware lets no one else through
    return Actor(agent.email, agent.is_admin)


def _load(session: Session, request: web.Request, reference: str) -> dict[str, Any] | None:
    config = request.app[CONFIG]
    actor = actor_of(request)
    detail = queries.detail(session, config, reference)
    r = session.scalar(select(Request).where(Request.reference == reference))
    if detail is None or r is None:
        return None
    first = decide.first_approval(session, r)
    total = decide.erase_total({s: e[Kind.ERASE] for s, e in detail["preview"].items()
                                if Kind.ERASE in e})
    detail.update(
        refusal=decide.approval_refusal(session, config, r, actor),
        first_approval=first.agent_email if first else None,
        four_eyes=decide.needs_second_agent(config, r),
        erase_total=total,
        needs_typed=decide.needs_typed_address(config, r, total),
        erase_above=config.policy.review_erase_above,
        undo_hours=config.erase.undo_hours,
        may_download=decide.may_download(config, actor),
        mine=detail["assignee"] == actor.email,
    )
    return detail


async def _detail(request: web.Request) -> dict[str, Any]:
    reference = request.match_info["reference"]
    detail = await in_db(request, lambda s: _load(s, request, reference))
    if detail is None:
        raise web.HTTPNotFound(text=strings(request[LANG])["error_no_such_request"])
    for f in detail["findings"]:
        f["text"] = finding_text(request[LANG], f["code"], f["args"])
    for e in detail["events"]:
        e.update(events.describe(request[LANG], e["action"], e["detail"]))
    return detail


@routes.get(REF)
async def show(request: web.Request) -> web.Response:
    return await _page(request, request.query.get("error"), done=request.query.get("done"))


async def _page(request: web.Request, error: str | None, status: int = 200,
                done: str | None = None, detail: str = "",
                typed: dict[str, Any] | None = None) -> web.Response:
    r = await _detail(request)
    table = strings(request[LANG])
    known = error if error and f"error_{error}" in table else None
    flash = _flash_key(done, r) if done else None
    return render(request, "request.html", status=status, r=r, error=known,
                  error_detail=detail, flash=flash if flash in table else None,
                  typed=typed or {}, can_correct=r["state"] in decide.CORRECTABLE,
                  max_months=decide.MAX_EXTENSION_MONTHS)


def _flash_key(done: str, r: dict[str, Any]) -> str:
    if done in ("approved", "approved_first"):
        return f"done_{done}_{Kind.ERASE if Kind.ERASE in r['kinds'] else Kind.EXPORT}"
    return f"done_{done}"


@routes.get(REF + "/approve")
async def confirm_approval(request: web.Request) -> web.Response:
    """The confirmation page: what approving will do, in words, before it is done."""
    r = await _detail(request)
    return render(request, "approve.html", r=r, error=None, typed="",
                  status=403 if r["refusal"] in FORBIDDEN else 200)


@routes.post(REF + "/approve")
async def approve(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    form = await request.post()
    if form.get("confirm") != "yes":
        # Approving is a two-step act: the confirmation page first.
        raise web.HTTPSeeOther(f"/requests/{quote(request.match_info['reference'])}/approve")
    typed = str(form.get("typed", ""))
    return await _act(request, lambda s, r, a, f: decide.approve(s, config, r, a, typed))


@routes.post(REF + "/reject")
async def reject(request: web.Request) -> web.Response:
    config = request.app[CONFIG]

    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> str:
        decide.reject(session, config, r, actor, str(form.get("reason", "")))
        return "rejected"

    return await _act(request, act)


@routes.post(REF + "/correct")
async def correct(request: web.Request) -> web.Response:
    config = request.app[CONFIG]

    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> str:
        fix = decide.parse_correction(str(form.get("subjects", "")), form.get("kinds", []),
                                      form.get("channels", []))
        decide.correct(session, config, r, actor, fix)
        return "corrected"

    return await _act(request, act)


@routes.post(REF + "/recheck")
async def recheck(request: web.Request) -> web.Response:
    config = request.app[CONFIG]

    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> str:
        decide.recheck(session, config, r, actor)
        return "rechecked"

    return await _act(request, act)


@routes.post(REF + "/extend")
async def extend(request: web.Request) -> web.Response:
    config = request.app[CONFIG]

    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> str:
        try:
            months = int(str(form.get("months", "")))
        except ValueError as exc:
            raise ReviewError("extension_too_long") from exc
        decide.extend_deadline(session, config, r, actor, months, str(form.get("reason", "")))
        return "extended"

    return await _act(request, act)


@routes.post(REF + "/take")
async def take(request: web.Request) -> web.Response:
    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> str:
        decide.take(session, r, actor)
        return "taken"

    return await _act(request, act)


@routes.post(REF + "/release")
async def release(request: web.Request) -> web.Response:
    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> str:
        decide.release(session, r, actor)
        return "released"

    return await _act(request, act)


@routes.post(REF + r"/replies/{reply:\d+}/resend")
async def resend(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    reply = int(request.match_info["reply"])

    def act(session: Session, r: Request, actor: Actor, form: dict[str, Any]) -> str:
        decide.resend(session, config, r, actor, reply)
        return "resent"

    return await _act(request, act)


@routes.get(REF + r"/exports/{export:\d+}")
async def download(request: web.Request) -> web.StreamResponse:
    """The export file, for a signed-in agent whom `policy.export_download` allows."""
    reference = request.match_info["reference"]
    export_id = int(request.match_info["export"])
    actor = actor_of(request)
    config = request.app[CONFIG]

    def fetch(session: Session) -> tuple[Path, str] | str:
        try:
            r = decide.find(session, reference)
            export = decide.kept_export(session, r, export_id)
        except ReviewError as exc:
            return exc.code
        if not decide.may_download(config, actor):
            audit.record(session, "export_download_refused", actor=actor.email, request=r,
                         reason="admins_only", export_id=export.id)
            return "download_admins_only"
        path = Path(export.path)
        if not path.is_file():
            return "export_gone"
        decide.record_download(session, r, export, actor)
        return path, export.filename

    found = await in_db(request, fetch)
    if isinstance(found, str):
        text = strings(request[LANG])[f"error_{found}"]
        if found == "download_admins_only":
            raise web.HTTPForbidden(text=text)
        raise web.HTTPGone(text=text) if found == "export_gone" else web.HTTPNotFound(text=text)
    path, filename = found
    return web.FileResponse(path, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


async def _act(request: web.Request, action: Action) -> web.Response:
    """Run one action in one transaction, then show the request again.

    A refusal rolls the transaction back and shows why; success redirects
    with what happened, so a reload does not repeat the action.
    """
    reference = request.match_info["reference"]
    actor = actor_of(request)
    form = await request.post()
    fields: dict[str, Any] = {k: form.get(k) for k in form if k not in ("kinds", "channels")}
    fields["kinds"] = [str(v) for v in form.getall("kinds", [])]
    fields["channels"] = [str(v) for v in form.getall("channels", [])]

    def unit(session: Session) -> str:
        return action(session, decide.find(session, reference), actor, fields)

    try:
        done = await in_db(request, unit)
    except ReviewError as exc:
        if exc.code == "no_such_request":
            raise web.HTTPNotFound(text=strings(request[LANG])["error_no_such_request"]) from exc
        if exc.code == "typed_address":
            r = await _detail(request)
            return render(request, "approve.html", status=400, r=r, error=exc.code,
                          typed=exc.detail)
        if exc.code in FORBIDDEN:
            return await _page(request, exc.code, status=403)
        if exc.code in KEEP_TYPED:
            return await _page(request, exc.code, status=400, detail=exc.detail, typed=fields)
        raise web.HTTPSeeOther(f"/requests/{quote(reference)}?error={exc.code}") from exc
    raise web.HTTPSeeOther(f"/requests/{quote(reference)}?done={done}")
