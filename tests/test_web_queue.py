"""The queue as agents use it: open by default, saved views, deadline badges, sorting."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kundo_gdpr.config import Config
from kundo_gdpr.models import Request
from kundo_gdpr.web import make_app, queries
from tests.helpers import drop, request_mail
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for
from tests.test_web import MakeClient, _sign_in, agents, exported  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("agents")
REFS = re.compile(r">(GDPR-\d{4}-\d{5})</a>")


@pytest.fixture
def two(exported: str, config: Config, engine: Engine) -> tuple[str, str]:  # noqa: F811
    """A done export and an open erase request: (done, open)."""
    drop(config.path("var/inbox"),
         request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase-alice")
    run_all(worker_for(config, engine))
    with Session(engine) as session:
        waiting = session.scalar(select(Request.reference).where(
            Request.state == "needs_review"))
    assert waiting
    return exported, waiting


async def test_the_queue_shows_open_requests_unless_asked_for_all(
    aiohttp_client: MakeClient, config: Config, engine: Engine, two: tuple[str, str]
) -> None:
    done, waiting = two
    client = await aiohttp_client(make_app(config, engine))
    await _sign_in(client, "anna@kundo.se")
    default = await (await client.get("/")).text()
    assert REFS.findall(default) == [waiting]
    assert 'aria-current="page">Open</a>' in default
    everything = await (await client.get("/?view=all")).text()
    assert set(REFS.findall(everything)) == {done, waiting}
    # The subject is a column of its own.
    row = default.split(f">{waiting}</a>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="subjects">alice@example.com</td>' in row


@pytest.mark.parametrize("days_later,badge,view_lists", [
    (0, None, {"due": False, "overdue": False}),
    (25, "soon", {"due": True, "overdue": False}),
    (40, "overdue", {"due": True, "overdue": True}),
])
async def test_deadline_badges_and_the_due_views_follow_the_clock(
    aiohttp_client: MakeClient, config: Config, engine: Engine, two: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch, days_later: int, badge: str | None,
    view_lists: dict[str, bool],
) -> None:
    _done, waiting = two
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=days_later)
    monkeypatch.setattr(queries, "utcnow", lambda: later)
    client = await aiohttp_client(make_app(config, engine))
    await _sign_in(client, "anna@kundo.se")
    html = await (await client.get("/")).text()
    row = html.split(f">{waiting}</a>", 1)[1].split("</tr>", 1)[0]
    for kind in ("soon", "overdue"):
        assert (f'class="badge {kind}"' in row) == (kind == badge), kind
    page = await (await client.get(f"/requests/{waiting}")).text()
    due = page.split('id="due-badge">', 1)[1].split("</span>", 1)[0]
    assert (f'badge {badge}' in due) if badge else ("overdue" not in due and "soon" not in due)
    for view, listed in view_lists.items():
        assert (waiting in await (await client.get(f"/?view={view}")).text()) == listed, view


async def test_columns_sort_both_ways(
    aiohttp_client: MakeClient, config: Config, engine: Engine, two: tuple[str, str]
) -> None:
    client = await aiohttp_client(make_app(config, engine))
    await _sign_in(client, "anna@kundo.se")
    up = REFS.findall(await (await client.get("/?view=all&sort=reference&dir=asc")).text())
    down = REFS.findall(await (await client.get("/?view=all&sort=reference&dir=desc")).text())
    assert up == sorted(two) and down == sorted(two, reverse=True)
    html = await (await client.get("/?view=all&sort=reference&dir=asc")).text()
    assert 'aria-sort="ascending"' in html and "sort=reference&amp;dir=desc" in html
