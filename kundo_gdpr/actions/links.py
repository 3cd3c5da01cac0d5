"""Signed, expiring download links for exports too large to attach, and the
sweep that deletes export files once their link has expired.

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
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.config import Config
from kundo_gdpr.models import Export, Request, utcnow

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


def sweep(factory: sessionmaker[Session], now: dt.datetime | None = None) -> int:
    """Delete the files of expired exports; return how many were deleted."""
    now = now or utcnow()
    done = 0
    with factory.begin() as session:
        stmt = select(Export).where(Export.expires_at <= now, Export.deleted_at.is_(None))
        for export in session.scalars(stmt.order_by(Export.id).limit(100)):
            _delete(session, export, now)
            done += 1
    return done


def _delete(session: Session, export: Export, now: dt.datetime) -> None:
    try:
        Path(export.path).unlink(missing_ok=True)
    except OSError:
        log.exception("could not delete export file %s", export.path)
        return
    export.deleted_at = now
    request = session.get(Request, export.request_id)
    audit.record(session, "export_deleted", request=request, export_id=export.id,
                 filename=export.filename)
