"""/healthz and /metrics: figures equal the database, no personal data in labels,
access only with the bearer token (or from loopback), 503 when the database is down."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config
from kundo_gdpr.models import OutboundMail, Request, StageFailure, StageStat, utcnow
from kundo_gdpr.models.queue import DONE, HELD, OPEN_STATES
from kundo_gdpr.operations import health, stats
from kundo_gdpr.web import make_app
from tests.conftest import make_config
from tests.helpers import drop, request_mail
from tests.postgres import PrivatePostgres, private_postgres  # noqa: F401
from tests.test_pipeline import ERASE_ALICE, EXPORT_BERTIL, run_all, worker_for

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
TOKEN_ENV = "KUNDO_GDPR_TEST_METRICS_TOKEN"


@pytest.fixture
def busy(tmp_path: Path, db_url: str, engine: Engine, world: None) -> Config:
    """Two done requests (an erase, an export), one for review, and a held reply."""
    config = make_config(tmp_path, db_url, policy={"auto_approve": True},
                         auth={"require": False}, health={"token_env": TOKEN_ENV})
    inbox = config.path("var/inbox")
    drop(inbox, request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "erase")
    drop(inbox, request_mail("Eva Ek <eva@cykelbolaget.se>", EXPORT_BERTIL), "export")
    run_all(worker_for(config, engine))
    review = make_config(tmp_path, db_url, auth={"require": False},
                         service={"max_replies_per_sender_per_hour": 1})
    drop(inbox, request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE.replace(
        "alice@example.com", "carl@example.com")), "review")
    run_all(worker_for(review, engine))
    return config


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{sample name: {sorted labels: value}} from Prometheus text."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_equal_the_database_and_name_no_one(
    aiohttp_client: MakeClient, busy: Config, engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    client = await aiohttp_client(make_app(busy, engine))
    response = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "Set-Cookie" not in response.headers  # off the agents' session
    body = await response.text()
    for private in ("@", "alice", "bertil", "carl", "GDPR-"):
        assert private not in body
    got = _families(body)
    with Session(engine) as session:
        states = dict(session.execute(
            select(Request.state, func.count()).group_by(Request.state)).all())
        outbox = dict(session.execute(
            select(OutboundMail.state, func.count()).group_by(OutboundMail.state)).all())
        results = session.execute(select(Request.kinds, Request.result)
                                  .where(Request.state == DONE)).all()
        stage_rows = {s.stage: s for s in session.scalars(select(StageStat))}
        open_count = session.scalar(select(func.count()).select_from(Request)
                                    .where(Request.state.in_(OPEN_STATES)))
    assert states[DONE] == 2 and outbox[HELD] >= 1 and open_count == 1
    for state, value in got["kundo_gdpr_requests"].items():
        assert value == states.get(dict(state)["state"], 0)
    for state, value in got["kundo_gdpr_outbox"].items():
        assert value == outbox.get(dict(state)["state"], 0)
    assert sum(got["kundo_gdpr_open_requests_by_due"].values()) == open_count
    assert got["kundo_gdpr_open_requests_by_due"][(("days_to_due", "15-30"),)] == 1
    assert got["kundo_gdpr_overdue_requests"][()] == 0
    assert got["kundo_gdpr_oldest_open_request_age_seconds"][()] > 0
    items: dict[tuple[str, str, str], float] = {}
    for kinds, result in results:
        for action in kinds:
            for counts in result[action].values():
                for channel, per_item in counts.items():
                    as_items = {"items": per_item} if isinstance(per_item, int) else per_item
                    for item, n in as_items.items():
                        key = (action, channel, item)
                        items[key] = items.get(key, 0) + n
    assert items and {
        (dict(k)["action"], dict(k)["channel"], dict(k)["item"]): v
        for k, v in got["kundo_gdpr_items_total"].items()} == items
    assert got["kundo_gdpr_action_seconds_count"] == {
        (("action", "erase"),): 1, (("action", "export"),): 1}
    for stage, row in stage_rows.items():
        assert got["kundo_gdpr_stage_units_total"][(("stage", stage),)] == row.units
        assert got["kundo_gdpr_stage_passes_total"][(("stage", stage),)] == row.passes
    assert stage_rows["fetch"].units == 3 and stage_rows["run"].units == 2
    assert 0 <= got["kundo_gdpr_last_fetch_age_seconds"][()] < 600


async def test_metrics_and_healthz_need_the_token_when_one_is_configured(
    aiohttp_client: MakeClient, tmp_path: Path, db_url: str, engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config(tmp_path, db_url, health={"token_env": TOKEN_ENV})
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    client = await aiohttp_client(make_app(config, engine))
    for path in ("/metrics", "/healthz"):
        assert (await client.get(path)).status == 401
        wrong = await client.get(path, headers={"Authorization": "Bearer s3cre"})
        assert wrong.status == 401
    good = await client.get("/healthz", headers={"Authorization": "Bearer s3cret"})
    assert good.status == 503  # no worker has fetched yet
    assert (await good.json())["problems"] == ["no worker has fetched mail yet"]


async def test_without_a_token_only_loopback_clients_not_behind_a_proxy_get_metrics(
    aiohttp_client: MakeClient, tmp_path: Path, db_url: str, engine: Engine,
) -> None:
    config = make_config(tmp_path, db_url, health={"token_env": TOKEN_ENV + "_UNSET"})
    client = await aiohttp_client(make_app(config, engine))
    assert (await client.get("/metrics")).status == 200
    proxied = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 401


def test_healthz_counts_stage_failures_and_a_stale_fetch(
    factory: sessionmaker[Session], config: Config,
) -> None:
    # The clock stands still while the passes are recorded, so the fetch's age below is
    # exactly the 61 minutes the test moves on, however slow the machine is.
    now = utcnow()
    with time_machine.travel(now, tick=False):
        stats.record(factory, "fetch", units=0, seconds=0.01)
        for _ in range(3):
            stats.record(factory, "deliver", units=0, seconds=0.5, error="SMTPServerDisconnected")
    limits = dataclasses.replace(config.health, max_stage_failures_per_hour=2)
    with factory() as session:
        found = health.check(session, limits, now)
        assert found.failures_last_hour == 3 and not found.ok
        assert found.problems == ["3 failed stage passes in the last hour (limit 2)"]
        later = health.check(session, limits, now + dt.timedelta(minutes=61))
        assert later.failures_last_hour == 0
        assert later.problems == ["last successful fetch 3660 s ago (limit 600 s)"]
        assert health.check(session, config.health, now).ok
        assert session.scalar(select(func.count()).select_from(StageFailure)) == 3
        deliver = session.get(StageStat, "deliver")
        assert deliver is not None and (deliver.passes, deliver.failures) == (3, 3)


async def test_healthz_says_503_when_the_database_is_stopped(
    aiohttp_client: MakeClient, tmp_path: Path, private_postgres: PrivatePostgres,  # noqa: F811
) -> None:
    config = make_config(tmp_path, private_postgres.url)
    engine = db.make_engine(private_postgres.url)
    db.upgrade(engine)
    worker = worker_for(config, engine)
    worker.run_once()  # an idle pass: fetched nothing, successfully
    client = await aiohttp_client(make_app(config, engine))
    up = await client.get("/healthz")
    assert up.status == 200, await up.text()
    assert (await up.json())["database"] is True
    private_postgres.stop()
    down = await client.get("/healthz")
    assert down.status == 503
    assert (await down.json())["database"] is False
    private_postgres.start()
    assert (await client.get("/healthz")).status == 200
    engine.dispose()
