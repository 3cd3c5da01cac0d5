"""The append-only audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kundo_gdpr.models import Event, InboundMail, Request, utcnow

SYSTEM = "system"


def record(
    session: Session,
    action: str,
    *,
    actor: str = SYSTEM,
    request: Request | None = None,
    mail: InboundMail | None = None,
    **detail: Any,
) -> Event:
    """Add one event to the session; it commits with the change it describes."""
    event = Event(
        request_id=request.id if request else None,
        inbound_mail_id=mail.id if mail else (request.inbound_mail_id if request else None),
        at=utcnow(),
        actor=actor,
        action=action,
        detail=detail,
    )
    session.add(event)
    return event
