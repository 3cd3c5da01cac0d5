"""Stage schedules: previews of due retention rules (daily) and approved runs.

`evaluate_due` previews each due rule (actions/schedules.py decides whether
it waits for an agent). `run_one` claims the next approved run, carries it
out batch by batch with the same erase engine as requests (holds kept out,
every change in the run's undo vault), then marks it done and mails the
controller's editors a summary with the counts, in the organization's
language, in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.actions import schedules, vault
from kundo_gdpr.config import Config
from kundo_gdpr.db import claim
from kundo_gdpr.models import Organization, OutboundMail, RetentionRule, RetentionRun, utcnow
from kundo_gdpr.models.queue import HELD, QUEUED
from kundo_gdpr.models.schedules import APPROVED
from kundo_gdpr.replies.outbox import OWN_HEADER, over_limit
from kundo_gdpr.replies.render import Envelope, make_message, new_message_id


def evaluate_due(factory: sessionmaker[Session], config: Config,
                 now: dt.datetime | None = None) -> int:
    return schedules.evaluate_due(factory, config, now)


def run_one(factory: sessionmaker[Session], config: Config) -> bool:
    """Carry out the next approved run and mail its summary; False if none waits."""
    with factory.begin() as session:
        run = claim(session, select(RetentionRun).where(RetentionRun.state == APPROVED)
                    .order_by(RetentionRun.id))
        if run is None:
            return False
        run_id = run.id
    watched = vault.watched(factory, None, config.erase.undo_hours, run_id=run_id)
    schedules.execute(factory, config, run_id, watched)
    with factory.begin() as session:
        run = claim(session, select(RetentionRun).where(
            RetentionRun.id == run_id, RetentionRun.state == APPROVED))
        if run is not None:
            rule = schedules.finish(session, run, utcnow())
            _summary(session, config, rule, run)
    return True


def _summary(session: Session, config: Config, rule: RetentionRule, run: RetentionRun) -> None:
    org = session.get(Organization, rule.organization_id)
    assert org is not None
    window = vault.run_window(session, run.id)
    context: dict[str, Any] = {
        "reference": f"retention-{rule.id}-{run.id}", "organization": org.name,
        "rule": {"kind": rule.kind, "basis": rule.basis, "months": rule.months},
        "counts": run.result, "total": schedules.total(run.result),
        "undo_until": window.closes_at if window and window.key else None,
    }
    for to_addr in schedules.editors(session, org.id):
        queue_notice(session, config, to_addr, org.language, "retention_summary", context)


def queue_notice(session: Session, config: Config, to_addr: str, language: str, purpose: str,
                 context: dict[str, Any]) -> OutboundMail:
    """A mail to an editor that answers no request (a schedule's summary), via the outbox."""
    message_id = new_message_id(f"{context['reference']}.{purpose}",
                                config.service.message_id_domain)
    envelope = Envelope(from_addr=config.service.support_addresses[0],
                        from_name=config.service.from_name, to_addr=to_addr,
                        message_id=message_id)
    msg = make_message(purpose, language, envelope, context)
    msg[OWN_HEADER] = context["reference"]
    held = over_limit(session, config, to_addr)
    row = OutboundMail(request_id=None, purpose=purpose, message_id=message_id, to_addr=to_addr,
                       subject=str(msg["Subject"]), raw=msg.as_bytes(),
                       state=HELD if held else QUEUED, next_attempt_at=utcnow())
    session.add(row)
    audit.record(session, "reply_held" if held else "reply_queued", purpose=purpose, to=to_addr,
                 message_id=message_id)
    return row
