"""Held replies bundled into one digest mail.

The hourly limit (`service.max_replies_per_sender_per_hour`) holds replies
back, never drops them; but a burst of requests from one editor would then be
answered hour by hour. When more than `service.digest_after` replies to one
address are held, the ones without an attachment go out at once as one digest
that lists each request's reference and its state now, with each bundled
reply's signed proof attached; each bundled reply becomes `bundled`, with a
`reply_bundled` event in its request's trail. Replies carrying exported data
stay held (the digest says they follow).
"""

from __future__ import annotations

from collections import defaultdict
from email import policy
from email.parser import BytesParser
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.models import OutboundMail, Request, utcnow
from kundo_gdpr.models.queue import BUNDLED, HELD, QUEUED
from kundo_gdpr.replies.outbox import OWN_HEADER
from kundo_gdpr.replies.render import Envelope, FileAttachment, make_message, new_message_id
from kundo_gdpr.replies.stored import KEPT

PURPOSE = "digest"


def bundle_held(factory: sessionmaker[Session], config: Config) -> int:
    """Queue a digest for every address with more than `digest_after` held
    replies; returns how many digests were queued."""
    limit = config.service.digest_after
    if not limit:
        return 0
    made = 0
    with factory.begin() as session:
        held = session.scalars(select(OutboundMail).where(OutboundMail.state == HELD)
                               .order_by(OutboundMail.id).with_for_update(skip_locked=True))
        by_address: dict[str, list[OutboundMail]] = defaultdict(list)
        for row in held:
            by_address[row.to_addr].append(row)
        for to_addr, rows in sorted(by_address.items()):
            if len(rows) <= limit:
                continue
            bundled = [r for r in rows if not _carries_data(r.raw)]
            if bundled:
                waiting = [r for r in rows if r not in bundled]
                queue_digest(session, config, to_addr, bundled, waiting)
                made += 1
    return made


def queue_digest(session: Session, config: Config, to_addr: str,
                 bundled: list[OutboundMail], waiting: list[OutboundMail]) -> OutboundMail:
    requests: dict[int | None, Request | None] = {
        r.request_id: session.get(Request, r.request_id)
        for r in (*bundled, *waiting) if r.request_id is not None}
    items = [_item(row, requests.get(row.request_id)) for row in bundled]
    languages = [r.language for r in requests.values() if r is not None]
    language = languages[-1] if languages else "sv"
    context: dict[str, Any] = {
        "items": items,
        "waiting": [_reference(row, requests.get(row.request_id)) for row in waiting],
    }
    message_id = new_message_id(PURPOSE, config.service.message_id_domain)
    envelope = Envelope(from_addr=config.service.support_addresses[0],
                        from_name=config.service.from_name, to_addr=to_addr,
                        message_id=message_id)
    # Each bundled reply's signed proof travels in the digest, named for its request.
    proofs = [p for row in bundled
              for p in _proofs(row, _reference(row, requests.get(row.request_id)))]
    msg = make_message(PURPOSE, language, envelope, context, proofs)
    msg[OWN_HEADER] = PURPOSE
    digest = OutboundMail(request_id=None, purpose=PURPOSE, message_id=message_id,
                          to_addr=to_addr, subject=str(msg["Subject"]), raw=msg.as_bytes(),
                          state=QUEUED, next_attempt_at=utcnow())
    session.add(digest)
    audit.record(session, "reply_queued", purpose=PURPOSE, to=to_addr, message_id=message_id,
                 replies=len(bundled))
    for row in bundled:
        row.state = BUNDLED
        audit.record(session, "reply_bundled", request=requests.get(row.request_id),
                     message_id=row.message_id, digest=message_id)
    return digest


def _item(row: OutboundMail, request: Request | None) -> dict[str, Any]:
    return {"reference": _reference(row, request), "purpose": row.purpose,
            "state": request.state if request is not None else None}


def _reference(row: OutboundMail, request: Request | None) -> str:
    if request is not None and request.reference:
        return request.reference
    own = BytesParser(policy=policy.default).parsebytes(row.raw, headersonly=True)[OWN_HEADER]
    return str(own or row.subject)


def _carries_data(raw: bytes) -> bool:
    """Whether the reply has an attachment other than its signed proof (an export)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    return any(part.is_attachment() and part.get_filename() not in KEPT
               for part in message.walk())


def _proofs(row: OutboundMail, reference: str) -> list[FileAttachment]:
    """The reply's signed proof(s), named for the reference and reply they belong to."""
    message = BytesParser(policy=policy.default).parsebytes(row.raw)
    found = []
    for part in message.walk():
        name = part.get_filename()
        if part.is_attachment() and name in KEPT:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append(FileAttachment(f"{reference}-{row.purpose}-{name}",
                                        part.get_content_type(), payload))
    return found
