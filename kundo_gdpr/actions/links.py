"""Signed, expiring download links for exports too large to attach, and the
sweep that deletes export files once their link has expired.

No copy of an export outlives its link: with the file go the attachment
bytes of the request's stored replies (`outbound_mail.raw`, already stripped
once sent, and the outbox folder's `.eml`). An erase of a subject discards
any export of theirs an earlier request still keeps.

A link is `/downloads/<export id>.<expiry>.<signature>`: the signature is an
HMAC of id and expiry under the web app's secret, so a link cannot be made
for another export or made to live longer.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.identity import subject_key
from kundo_gdpr.models import Export, OutboundMail, Request, utcnow
from kundo_gdpr.replies.stored import without_attachments
from kundo_gdpr.replies.transports import eml_name

log = logging.getLogger(__name__)

ROUTE = "/downloads/"


class LinkError(Exception):
    """A link cannot be made: the web secret is not set."""


def _key(secret: str) -> bytes:
    # Its own key, so a link signature is never also a valid session signature.
    return hashlib.sha256(b"kundo-gdpr export link\0" + secret.encode()).digest()


def _signature(secret: str, payload: str) -> str:
    mac = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def token(secret: str, export_id: int, expires_at: dt.datetime) -> str:
    if not secret:
        raise LinkError("the web secret is not set; export links cannot be signed")
    payload = f"{export_id}.{int(expires_at.timestamp())}"
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: str, value: str) -> tuple[int, dt.datetime] | None:
    """(export id, expiry) of a genuine token; None for anything else."""
    parts = value.split(".")
    if not secret or len(parts) != 3 or not all(p.isdigit() for p in parts[:2]):
        return None
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_signature(secret, payload), parts[2]):
        return None
    return int(parts[0]), dt.datetime.fromtimestamp(int(parts[1]), dt.UTC)


def url(config: Config, export: Export) -> str:
    secret = config.secret(config.web.secret_env)
    return config.web.base_url.rstrip("/") + ROUTE + token(secret, export.id, export.expires_at)


def sweep(
    factory: sessionmaker[Session], now: dt.datetime | None = None, config: Config | None = None
) -> int:
    """Delete the files of expired exports (and the stored replies' copies:
    `config` says where the outbox folder is); return how many were deleted."""
    now = now or utcnow()
    done = 0
    with factory.begin() as session:
        stmt = select(Export).where(Export.expires_at <= now, Export.deleted_at.is_(None))
        for export in session.scalars(stmt.order_by(Export.id).limit(100)):
            done += _delete(session, config, export, now)
    return done


def discard(session: Session, config: Config | None, subject: str, keep_request: int) -> int:
    """Delete every kept export of an erased subject but the erasing request's own
    (which its done reply delivers); return how many were deleted."""
    wanted = subject_key(subject)
    stmt = select(Export).where(Export.deleted_at.is_(None), Export.request_id != keep_request)
    done = 0
    for export in session.scalars(stmt.order_by(Export.id)):
        if wanted is not None and subject_key(export.subject) == wanted:
            done += _delete(session, config, export, utcnow(), reason="erased")
    return done


def _delete(
    session: Session, config: Config | None, export: Export, now: dt.datetime,
    reason: str = "expired",
) -> int:
    try:
        Path(export.path).unlink(missing_ok=True)
    except OSError:
        log.exception("could not delete export file %s", export.path)
        return 0
    export.deleted_at = now
    request = session.get(Request, export.request_id)
    _strip_replies(session, config, export.request_id)
    audit.record(session, "export_deleted", request=request, export_id=export.id,
                 filename=export.filename, reason=reason)
    return 1


def _strip_replies(session: Session, config: Config | None, request_id: int) -> None:
    """The request's stored replies without attachment bytes, in the database
    and in the outbox folder."""
    folder = (config.path(config.outbox.folder.path)
              if config is not None and config.outbox.transport == "folder" else None)
    for row in session.scalars(select(OutboundMail).where(OutboundMail.request_id == request_id)):
        row.raw = without_attachments(row.raw)
        if folder is not None and (eml := folder / eml_name(row.message_id)).is_file():
            stripped = without_attachments(eml.read_bytes())
            tmp = eml.with_name(f".{eml.name}.tmp")
            tmp.write_bytes(stripped)
            os.replace(tmp, eml)
