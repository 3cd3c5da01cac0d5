"""Legal holds: a subject's items an organization must keep, which an erase skips.

A hold names an organization, a subject (their normalised address), optionally
one channel (else every channel of the organization), a reason and an end.
While it is active (not ended, end not reached) an erase of that subject
leaves the held channels alone; the done reply lists what was kept and why,
and an export still includes it. Every change is an audit event, which
names the subject only by keyed hash and masked form (the hold row itself keeps
the address, as matching needs it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kundo_gdpr import audit, identity
from kundo_gdpr.desk import ChannelRef
from kundo_gdpr.models import Channel, LegalHold, Organization, utcnow
from kundo_gdpr.records.hashing import KeyRing, concealed


class HoldError(Exception):
    """A hold that cannot be placed or ended; `code` is stable, for the messages."""

    def __init__(self, code: str, **detail: Any) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Held:
    """One held channel of one subject, as the run records it and the reply says it."""

    channel_id: int
    kind: str
    channel: str
    reason: str
    ends_at: str  # ISO date-time, UTC

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def add(
    session: Session, organization: str, subject: str, reason: str, ends_at: dt.datetime,
    actor: str, *, ring: KeyRing, channel: str | None = None, now: dt.datetime | None = None,
) -> LegalHold:
    """Place a hold; `organization` is its slug, `channel` a channel's id or name in it.
    `ring` hashes the subject for the audit event."""
    now = now or utcnow()
    org = session.scalar(select(Organization).where(Organization.slug == organization))
    if org is None:
        raise HoldError("no_such_organization", organization=organization)
    key = identity.subject_key(subject)
    if key is None or "@" not in key:
        raise HoldError("invalid_subject", subject=subject)
    if not reason.strip():
        raise HoldError("reason_required")
    if ends_at <= now:
        raise HoldError("ends_in_the_past", ends_at=ends_at.isoformat())
    channel_id = _channel(session, org.id, channel) if channel else None
    hold = LegalHold(organization_id=org.id, subject=key, channel_id=channel_id,
                     reason=reason.strip(), ends_at=ends_at, created_by=actor, created_at=now)
    session.add(hold)
    session.flush()
    audit.record(session, "hold_added", actor=actor, hold_id=hold.id, organization=org.slug,
                 **concealed(ring, key), channel_id=channel_id, reason=hold.reason,
                 ends_at=ends_at.isoformat())
    return hold


def _channel(session: Session, organization_id: int, channel: str) -> int:
    match = Channel.id == int(channel) if channel.isdigit() else Channel.name == channel
    found = session.scalars(select(Channel.id).where(
        Channel.organization_id == organization_id, match)).all()
    if len(found) != 1:
        raise HoldError("no_such_channel", channel=channel)
    return found[0]


def end(session: Session, hold_id: int, actor: str, *, ring: KeyRing,
        now: dt.datetime | None = None) -> LegalHold:
    now = now or utcnow()
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise HoldError("no_such_hold", hold_id=hold_id)
    if hold.ended_at is not None:
        raise HoldError("already_ended", hold_id=hold_id)
    hold.ended_at, hold.ended_by = now, actor
    audit.record(session, "hold_ended", actor=actor, hold_id=hold.id,
                 **concealed(ring, hold.subject), organization_id=hold.organization_id,
                 channel_id=hold.channel_id)
    return hold


def listed(session: Session, include_ended: bool = False,
           now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Holds with their organization and channel names, newest first."""
    now = now or utcnow()
    stmt = (select(LegalHold, Organization.slug, Channel.name)
            .join(Organization, Organization.id == LegalHold.organization_id)
            .outerjoin(Channel, Channel.id == LegalHold.channel_id)
            .order_by(LegalHold.id.desc()))
    if not include_ended:
        stmt = stmt.where(_active(now))
    return [{"id": h.id, "organization": slug, "subject": h.subject, "channel": name,
             "reason": h.reason, "ends_at": h.ends_at, "created_by": h.created_by,
             "created_at": h.created_at, "ended_at": h.ended_at, "ended_by": h.ended_by,
             "active": h.ended_at is None and h.ends_at > now}
            for h, slug, name in session.execute(stmt)]


def _active(now: dt.datetime) -> Any:
    return (LegalHold.ended_at.is_(None)) & (LegalHold.ends_at > now)


def held(
    session: Session, organization_id: int | None, subject: str,
    channels: Sequence[ChannelRef], now: dt.datetime | None = None,
) -> list[Held]:
    """The channels among `channels` in which the subject's items are held now."""
    key = identity.subject_key(subject)
    if organization_id is None or key is None or not channels:
        return []
    holds = session.scalars(select(LegalHold).where(
        LegalHold.organization_id == organization_id, LegalHold.subject == key,
        _active(now or utcnow()),
        or_(LegalHold.channel_id.is_(None), LegalHold.channel_id.in_([c.id for c in channels])),
    ).order_by(LegalHold.id))
    found: dict[int, Held] = {}
    for hold in holds:
        for c in channels:
            if hold.channel_id in (None, c.id) and c.id not in found:
                found[c.id] = Held(c.id, c.kind, c.name, hold.reason,
                                   hold.ends_at.isoformat())
    return [found[c.id] for c in channels if c.id in found]
