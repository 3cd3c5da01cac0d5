"""An agent rejects while the erase batches run, through a second real
connection: the reject is refused once a run has claimed the request, and a
run whose request leaves `approved` stops between batches. Never `rejected`
with data erased; the editor never gets contradictory replies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config
from kundo_gdpr.models import Event, OutboundMail, Request
from kundo_gdpr.models.queue import EraseProgress
from kundo_gdpr.stages import decide, run
from kundo_gdpr.stages.decide import Actor, ReviewError
from tests.helpers import drop, request_mail
from tests.test_erase_resume import tiny_batches
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for

__all__ = ["tiny_batches"]  # the fixture, used by name

ADMIN = Actor("adam@kundo.se", is_admin=True)


@pytest.fixture
def second(db_url: str, engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Another engine on the same database: the agent's own connection."""
    other = db.make_engine(db_url)
    yield db.session_factory(other)
    other.dispose()


def approved(config: Config, engine: Engine, factory: sessionmaker[Session]) -> int:
    drop(config.path("var/inbox"), request_mail("eva@cykelbolaget.se", ERASE_ALICE), "r1")
    run_all(worker_for(config, engine))
    with factory.begin() as session:
        request = session.scalars(select(Request)).one()
        decide.approve(session, config, decide.find(session, request.reference or ""), ADMIN)
        return request.id


def purposes(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(OutboundMail.purpose).order_by(OutboundMail.id)))


def test_a_reject_while_the_erase_runs_is_refused_and_the_run_finishes(
    world: None, tiny_batches: None, config: Config, engine: Engine,
    factory: sessionmaker[Session], second: sessionmaker[Session],
) -> None:
    request_id = approved(config, engine, factory)
    refusals: list[str] = []

    def agent_rejects(batches: int) -> None:
        if batches != 2:
            return
        with second.begin() as session:
            request = session.get(Request, request_id)
            assert request is not None and request.state == "approved"
            try:
                decide.reject(session, config, decide.find(session, request.reference or ""),
                              ADMIN, "Changed my mind")
            except ReviewError as exc:
                refusals.append(exc.code)

    run.handle(factory, config, request_id, after_batch=agent_rejects)
    assert refusals == ["running"]
    with factory() as session:
        request = session.get(Request, request_id)
        assert request is not None and request.state == "done"
        actions = list(session.scalars(select(Event.action).where(Event.request_id == request_id)))
    assert "rejected" not in actions
    assert purposes(factory) == ["receipt", "done"]


def test_a_reject_before_the_run_claims_the_request_is_taken_and_nothing_is_erased(
    world: None, config: Config, engine: Engine, factory: sessionmaker[Session],
    second: sessionmaker[Session],
) -> None:
    request_id = approved(config, engine, factory)
    with second.begin() as session:
        request = session.get(Request, request_id)
        assert request is not None
        decide.reject(session, config, decide.find(session, request.reference or ""), ADMIN,
                      "Changed my mind")
    run.handle(factory, config, request_id)
    with factory() as session:
        assert session.get(Request, request_id).state == "rejected"  # type: ignore[union-attr]
        assert session.scalars(select(EraseProgress)).first() is None
    assert purposes(factory) == ["receipt", "rejected"]


def test_a_run_whose_request_leaves_approved_stops_between_batches(
    world: None, tiny_batches: None, config: Config, engine: Engine,
    factory: sessionmaker[Session], second: sessionmaker[Session],
) -> None:
    """Whatever moves the request out of `approved` mid-run (here a direct write on
    another connection), the run stops after the batch in hand and records nothing."""
    request_id = approved(config, engine, factory)

    def moved_elsewhere(batches: int) -> None:
        if batches == 2:
            with second.begin() as session:
                session.execute(update(Request).where(Request.id == request_id)
                                .values(state="quarantined"))

    run.handle(factory, config, request_id, after_batch=moved_elsewhere)
    with factory() as session:
        progress = session.scalars(select(EraseProgress)).one()
        assert progress.batches == 2 and progress.done_at is None
        request = session.get(Request, request_id)
        assert request is not None and request.state == "quarantined"
        assert "erase" not in (request.result or {})  # the run recorded no result
        actions = list(session.scalars(select(Event.action).where(Event.request_id == request_id)))
    assert "done" not in actions
    assert purposes(factory) == ["receipt"]
