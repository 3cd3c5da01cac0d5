"""What every reply template may know about a request.

Below the stages: every stage that queues a reply builds its context here,
so the stages depend on `replies`, never the reverse.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kundo_gdpr.models import Organization, Request

# A finding's severity that is only information (checks.INFO); kept here as a
# string so replies do not import the checks.
INFO = "info"


def organization_name(session: Session, request: Request) -> str:
    org = session.get(Organization, request.organization_id) if request.organization_id else None
    return org.name if org else ""


def reply_context(session: Session, request: Request, **extra: Any) -> dict[str, Any]:
    """What every reply template may use."""
    return {
        "reference": request.reference,
        "organization": organization_name(session, request),
        "subjects": [s.email for s in request.subjects],
        "kinds": list(request.kinds),
        "channel_kinds": list(request.channel_kinds),
        "findings": list(request.findings),
        "problems": [f for f in request.findings if f["severity"] != INFO],
        "not_covered": [f["args"] for f in request.findings if f["code"] == "channel_not_covered"],
        "result": request.result or {},
        "received_at": request.received_at,
        "due_at": request.due_at,
        "reason": None,
        **extra,
    }
