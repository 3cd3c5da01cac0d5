"""The stored copy of a sent reply keeps no attachment bytes.

A done reply may carry a subject's export. Once it is delivered, the copy
kept in `outbound_mail.raw` (and, once the export expires, the outbox
folder's `.eml`) has each attachment replaced by a one-line note naming it,
so no copy of the export outlives its link. A copy sent again (an agent's
resend) gets the files back at send time from the request's exports, while
they are kept; after that it carries the notes.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr.models import Export, OutboundMail, utcnow

REMOVED = ".removed.txt"
# Kept whole: the signed proof names nobody in clear and is what the reply proves.
KEPT = frozenset({"proof.json"})


def without_attachments(raw: bytes) -> bytes:
    """The message with every attachment's content replaced by a note; unchanged
    (the same bytes) when it has none."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    changed = False
    for part in message.walk():
        if part.is_multipart() or not part.is_attachment():
            continue
        name = part.get_filename() or "attachment"
        if name.endswith(REMOVED) or name in KEPT:
            continue
        part.set_content(f"[{name}: removed from the stored copy after delivery]\n",
                         disposition="attachment", filename=name + REMOVED)
        changed = True
    return message.as_bytes() if changed else raw


def refilled(session: Session, row: OutboundMail) -> bytes:
    """The reply's bytes to send: each note put back as the export file it
    names, if the request still keeps that file; the stored bytes otherwise."""
    if row.request_id is None or REMOVED.encode() not in row.raw:
        return row.raw
    kept = {e.filename: e for e in session.scalars(select(Export).where(
        Export.request_id == row.request_id, Export.deleted_at.is_(None),
        Export.expires_at > utcnow()))}
    message = BytesParser(policy=policy.default).parsebytes(row.raw)
    changed = False
    for part in message.walk():
        name = part.get_filename() or ""
        export = kept.get(name.removesuffix(REMOVED)) if name.endswith(REMOVED) else None
        if export is None or not Path(export.path).is_file():
            continue
        maintype, _, subtype = export.content_type.partition("/")
        part.set_content(Path(export.path).read_bytes(), maintype=maintype, subtype=subtype,
                         disposition="attachment", filename=export.filename)
        changed = True
    return message.as_bytes() if changed else row.raw
