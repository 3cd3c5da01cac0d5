"""/healthz: can this deployment answer mail? The database answers, a worker
fetched recently, and stage passes are not failing over and over."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kundo_gdpr.config import HealthConfig
from kundo_gdpr.models import StageStat
from kundo_gdpr.operations.metrics import failures_since
from kundo_gdpr.operations.stats import FETCH


@dataclass
class Health:
    database: bool = True
    last_fetch_age_seconds: float | None = None
    failures_last_hour: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "database": self.database,
                "last_fetch_age_seconds": self.last_fetch_age_seconds,
                "stage_failures_last_hour": self.failures_last_hour,
                "problems": self.problems}


def unreachable(error: str) -> Health:
    return Health(database=False, problems=[f"database unreachable: {error}"])


def check(session: Session, limits: HealthConfig, now: dt.datetime) -> Health:
    """The health as the database tells it; raises if the database does not answer."""
    session.execute(text("SELECT 1"))
    health = Health()
    last_ok = session.scalar(select(StageStat.last_ok_at).where(StageStat.stage == FETCH))
    if last_ok is None:
        health.problems.append("no worker has fetched mail yet")
    else:
        health.last_fetch_age_seconds = round((now - last_ok).total_seconds(), 3)
        if health.last_fetch_age_seconds > limits.max_fetch_age_seconds:
            health.problems.append(
                f"last successful fetch {health.last_fetch_age_seconds:.0f} s ago "
                f"(limit {limits.max_fetch_age_seconds:.0f} s)")
    health.failures_last_hour = failures_since(session, now - dt.timedelta(hours=1))
    if health.failures_last_hour > limits.max_stage_failures_per_hour:
        health.problems.append(
            f"{health.failures_last_hour} failed stage passes in the last hour "
            f"(limit {limits.max_stage_failures_per_hour})")
    return health
