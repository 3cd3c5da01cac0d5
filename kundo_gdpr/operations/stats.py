"""Workers record each stage pass here: time taken, units done, failures.

One row per stage, shared by all workers (`UPDATE ... SET n = n + 1`), plus
one row per failed pass. Idle passes of stages other than fetch are not
recorded: only fetch's "last successful" time matters when nothing happens.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.models import StageFailure, StageStat, utcnow

FETCH = "fetch"
# Failure rows older than this are pruned when a new one is written.
KEEP_FAILURES = dt.timedelta(days=7)
MAX_ERROR_CHARS = 2000


def record(
    factory: sessionmaker[Session],
    stage: str,
    *,
    units: int,
    seconds: float,
    error: str | None = None,
) -> None:
    """Add one pass of `stage` to its totals, in its own short transaction."""
    if error is None and units == 0 and stage != FETCH:
        return
    now = utcnow()
    values: dict[str, object] = {
        "passes": StageStat.passes + 1,
        "units": StageStat.units + units,
        "seconds": StageStat.seconds + seconds,
    }
    if error is None:
        values["last_ok_at"] = now
    else:
        values["failures"] = StageStat.failures + 1
        values["last_failure_at"] = now
    for _ in range(2):
        with factory.begin() as session:
            done = session.execute(update(StageStat).where(StageStat.stage == stage).values(values))
            if cast(CursorResult[Any], done).rowcount:
                if error is not None:
                    session.add(StageFailure(stage=stage, at=now, error=error[:MAX_ERROR_CHARS]))
                    session.execute(
                        delete(StageFailure).where(StageFailure.at < now - KEEP_FAILURES))
                return
        _create_row(factory, stage)


def _create_row(factory: sessionmaker[Session], stage: str) -> None:
    try:
        with factory.begin() as session:
            session.add(StageStat(stage=stage, passes=0, units=0, failures=0, seconds=0.0))
    except IntegrityError:
        pass  # another worker created it first
