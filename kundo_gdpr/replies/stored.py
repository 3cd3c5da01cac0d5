"""The stored copy of a sent reply keeps no attachment bytes.

A done reply may carry a subject's export. Once it is delivered, the copy
kept in `outbound_mail.raw` (and, once the export expires, the outbox
folder's `.eml`) has each attachment replaced by a one-line note naming it,
so no copy of the export outlives its link.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

REMOVED = ".removed.txt"


def without_attachments(raw: bytes) -> bytes:
    """The message with every attachment's content replaced by a note; unchanged
    (the same bytes) when it has none."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    changed = False
    for part in message.walk():
        if part.is_multipart() or not part.is_attachment():
            continue
        name = part.get_filename() or "attachment"
        if name.endswith(REMOVED):
            continue
        part.set_content(f"[{name}: removed from the stored copy after delivery]\n",
                         disposition="attachment", filename=name + REMOVED)
        changed = True
    return message.as_bytes() if changed else raw
