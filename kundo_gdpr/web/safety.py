"""Undo (the safety window) on the request page, the legal holds page and the retention
schedules page.

The handlers read the form and pick the page; what undo does is in
`kundo_gdpr.stages.undo`, one transaction, and a refusal is recorded in its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr.actions import holds, schedules
from kundo_gdpr.models import Channel, Organization
from kundo_gdpr.records.hashing import key_ring
from kundo_gdpr.stages import decide, undo
from kundo_gdpr.stages.decide import ReviewError
from kundo_gdpr.web.base import AGENT, CONFIG, LANG, in_db, render
from kundo_gdpr.web.i18n import strings

routes = web.RouteTableDef()


async def _act(request: web.Request, work: Callable[[Session], object], page: str,
               done: str, refused: type[holds.HoldError] | type[schedules.ScheduleError],
               ) -> NoReturn:
    """Run one holds or schedules action and send the agent back to its page, saying
    what was done or (by its stable code) why it was refused."""
    try:
        await in_db(request, work)
    except refused as exc:
        raise web.HTTPSeeOther(f"{page}?error={exc.code}") from exc
    raise web.HTTPSeeOther(f"{page}?done={done}")



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
    raise web.HTTPSeeOther(f"{page}?done=undone")


# -- legal holds ---------------------------------------------------------------------


def _holds_page(session: Session) -> dict[str, Any]:
    orgs = session.execute(select(Organization.slug, Organization.name)
                           .order_by(Organization.name)).all()
    channels = session.execute(select(Channel.id, Channel.name, Organization.slug)
                               .join(Organization).order_by(Organization.name, Channel.name)).all()
    return {"rows": holds.listed(session, include_ended=True),
            "organizations": [{"slug": o.slug, "name": o.name} for o in orgs],
            "channels": [{"id": c.id, "name": c.name, "organization": c.slug} for c in channels]}


@routes.get("/holds")
async def holds_page(request: web.Request) -> web.Response:
    data = await in_db(request, _holds_page)
    error = request.query.get("error")
    known = error if error and f"error_hold_{error}" in strings(request[LANG]) else None
    return render(request, "holds.html", error=known, done=request.query.get("done"), **data)


def _admin(request: web.Request) -> str:
    agent = request[AGENT]
    assert agent is not None
    if not agent.is_admin:
        raise web.HTTPForbidden(text=strings(request[LANG])["error_hold_admin_only"])
    return str(agent.email)


@routes.post("/holds")
async def hold_add(request: web.Request) -> web.Response:
    actor = _admin(request)
    form = await request.post()
    try:
        until = dt.datetime.combine(dt.date.fromisoformat(str(form.get("until", ""))),
                                    dt.time(), dt.UTC)
    except ValueError as exc:
        raise web.HTTPSeeOther("/holds?error=bad_date") from exc
    channel = str(form.get("channel", "")) or None
    ring = key_ring(request.app[CONFIG])

    def work(session: Session) -> None:
        holds.add(session, str(form.get("organization", "")), str(form.get("subject", "")),
                  str(form.get("reason", "")), until, actor, ring=ring, channel=channel)

    await _act(request, work, "/holds", "added", holds.HoldError)


@routes.post(r"/holds/{hold:\d+}/end")
async def hold_end(request: web.Request) -> web.Response:
    actor = _admin(request)
    hold_id = int(request.match_info["hold"])
    ring = key_ring(request.app[CONFIG])
    await _act(request, lambda s: holds.end(s, hold_id, actor, ring=ring), "/holds", "ended",
               holds.HoldError)


# -- retention schedules ----------------------------------------------------------------


def _schedules_page(session: Session) -> dict[str, Any]:
    rows = [{"id": rule.id, "organization": slug, "kind": rule.kind, "basis": rule.basis,
             "months": rule.months, "strategy": rule.strategy, "created_by": rule.created_by,
             "run": None if run is None else {
                 "id": run.id, "state": run.state, "waits_for": run.waits_for,
                 "counts": run.counts, "total": run.total, "result": run.result}}
            for rule, slug, run in schedules.rules(session)]
    orgs = session.execute(select(Organization.slug, Organization.name)
                           .order_by(Organization.name)).all()
    return {"rows": rows, "organizations": [{"slug": o.slug, "name": o.name} for o in orgs]}


@routes.get("/schedules")
async def schedules_page(request: web.Request) -> web.Response:
    data = await in_db(request, _schedules_page)
    error = request.query.get("error")
    known = error if error and f"error_schedule_{error}" in strings(request[LANG]) else None
    return render(request, "schedules.html", error=known, done=request.query.get("done"),
                  detail=request.query.get("channel", ""), **data)


def _agent(request: web.Request) -> str:
    agent = request[AGENT]
    assert agent is not None
    return str(agent.email)


@routes.post("/schedules")
async def schedule_add(request: web.Request) -> web.Response:
    actor = _agent(request)
    config = request.app[CONFIG]
    form = await request.post()
    basis, kind = str(form.get("basis", "")), str(form.get("kind", ""))
    try:
        months = int(str(form.get("months", "")))
    except ValueError:
        raise web.HTTPSeeOther("/schedules?error=age_zero") from None
    strategy = schedules.WHOLE if basis == schedules.OLDER else getattr(
        config.erase, kind, "")

    def work(session: Session) -> None:
        schedules.add(session, str(form.get("organization", "")), kind, basis, months,
                      str(form.get("strategy") or strategy), actor)

    try:
        await in_db(request, work)
    except schedules.ScheduleError as exc:
        where = quote(str(exc.detail.get("channel", "")))
        raise web.HTTPSeeOther(f"/schedules?error={exc.code}&channel={where}") from exc
    raise web.HTTPSeeOther("/schedules?done=added")


@routes.post(r"/schedules/runs/{run:\d+}/approve")
async def schedule_approve(request: web.Request) -> web.Response:
    actor = _agent(request)
    run_id = int(request.match_info["run"])
    await _act(request, lambda s: schedules.approve(s, run_id, actor), "/schedules",
               "approved", schedules.ScheduleError)


@routes.post(r"/schedules/{rule:\d+}/remove")
async def schedule_remove(request: web.Request) -> web.Response:
    actor = _agent(request)
    rule_id = int(request.match_info["rule"])
    await _act(request, lambda s: schedules.remove(s, rule_id, actor), "/schedules",
               "removed", schedules.ScheduleError)
