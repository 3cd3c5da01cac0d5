"""A crash in the middle of an erase, then a re-run: the same end state and counts.

Each batch commits with its counts in erase_progress; the crash is a
BaseException raised by the real after-batch hook (like a kill: nothing
catches it), with batches and scan pages made tiny so the run has many.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.desk import mentions as mentions_module
from kundo_gdpr.desk import sql_erase
from kundo_gdpr.models import Request
from kundo_gdpr.models.queue import EraseProgress
from kundo_gdpr.stages import decide, run
from tests.helpers import drop, request_mail
from tests.test_erase import ALICE, alices_rows, covered, mentions, snapshot, traces
from tests.test_pipeline import ERASE_ALICE, run_all, worker_for

__all__ = ["mentions"]  # the fixture, used by name


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so no loop records it as a failure."""


@pytest.fixture
def tiny_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sql_erase, "BATCH", 1)
    monkeypatch.setattr(mentions_module, "PAGE", 1)
    yield


def approved_request(config: Config, engine: Engine, factory: sessionmaker[Session]) -> int:
    drop(config.path("var/inbox"), request_mail("eva@cykelbolaget.se", ERASE_ALICE), "r1")
    run_all(worker_for(config, engine))
    with factory.begin() as session:
        request = session.scalars(select(Request)).one()
        decide.mark_approved(session, request, "agent:test")
        return request.id


def crash_after(k: int) -> run.erase.AfterBatch:
    def hook(batches: int) -> None:
        if batches == k:
            raise Crash(k)

    return hook


@pytest.mark.parametrize("k", [1, 3, 6, 9])
def test_a_crash_after_batch_k_then_a_rerun_gives_the_same_end_state_and_counts(
    mentions: dict[str, int], config: Config, engine: Engine, factory: sessionmaker[Session],
    tiny_batches: None, k: int,
) -> None:
    request_id = approved_request(config, engine, factory)
    with factory() as session:
        channels = covered(session)
        ids = [c.id for c in channels]
        before, owned = snapshot(session), alices_rows(session, ids)
        request = session.get(Request, request_id)
        assert request
        preview = run.preview(session, config, request)[ALICE]
    with pytest.raises(Crash):
        run.prepare_request(factory, config, request_id, after_batch=crash_after(k))
    with factory() as session:
        progress = session.scalars(select(EraseProgress)).one()
        assert progress.batches == k and progress.done_at is None
        partial = progress.counts
        assert session.get(Request, request_id).state == "approved"  # type: ignore[union-attr]
    # What the committed batches counted is exactly what is gone so far.
    assert sum(n for items in partial.values() for n in items.values()) > 0
    run_all(worker_for(config, engine))
    with factory() as session:
        request = session.get(Request, request_id)
        assert request and request.state == "done" and request.result
        assert request.result["erase"][ALICE] == preview
        listed = [(m["item"], m["id"], m["found"]) for m in request.result["mentions"][ALICE]]
        assert len(listed) == len(set(listed)), "an item listed twice"
        assert {(t, i) for t, i, f in listed if f == "address"} == {
            (t, i) for t, i in mentions.items() if t not in ("near", "named")}
        assert traces(session, ids) == []
        after = snapshot(session)
    redacted = {k for k in owned if k in after}
    assert before.keys() - after.keys() == owned - redacted
    changed = {key for key in after if after[key] != before[key]}
    assert changed - redacted == {(t, i) for t, i in mentions.items()
                                  if t not in ("near", "named")}


def test_the_run_has_more_batches_than_the_crash_points(
    mentions: dict[str, int], config: Config, engine: Engine, factory: sessionmaker[Session],
    tiny_batches: None,
) -> None:
    """Guards the test above: with tiny batches every crash point is mid-run."""
    request_id = approved_request(config, engine, factory)
    run.prepare_request(factory, config, request_id)
    with factory() as session:
        assert session.scalars(select(EraseProgress)).one().batches > 9
