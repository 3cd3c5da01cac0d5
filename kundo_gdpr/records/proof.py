"""proof.json: a signed statement of what was asked and what was done.

The receipt and the done reply carry one. Its shape:

    {"proof":     {field: value, ...},
     "digests":   {field: SHA-256 of the field's canonical JSON, ...},
     "signature": {"algorithm": "Ed25519", "key": key id, "value": base64}}

Canonical JSON is `json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)` in UTF-8. The signature is over the canonical JSON of
`digests`. Signing the per-field digests (not the whole proof at once) lets a
verifier say *which* field was changed. Anyone can check a proof with the
public key at /.well-known/kundo-gdpr-proof.pub and nothing of ours.

Subjects appear only as keyed hashes (`records.hashing`): the proof shows
which subjects were handled to whoever knows the address and holds the key,
and names nobody to anyone else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr.config import Config
from kundo_gdpr.models import Channel, Export, InboundMail, Organization, Request, utcnow
from kundo_gdpr.records import signing
from kundo_gdpr.records.hashing import KeyRing, key_ring
from kundo_gdpr.vocabulary import KINDS

FORMAT = "kundo-gdpr-proof/1"
FILENAME = "proof.json"
CONTENT_TYPE = "application/json"
FIELDS = (
    "format", "stage", "issuer", "issued_at", "reference", "controller", "request_mail_sha256",
    "received_at", "due_at", "done_at", "kinds", "channels", "subjects", "counts", "files",
)


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def statement(session: Session, config: Config, request: Request, stage: str,
              ring: KeyRing | None = None) -> dict[str, Any]:
    """The fields of the request's proof at this stage ("receipt" or "done")."""
    ring = ring or key_ring(config)
    hashed = {s.email: ring.hash_subject(s.email) for s in request.subjects}
    mail = session.get(InboundMail, request.inbound_mail_id)
    organization = (session.get(Organization, request.organization_id)
                    if request.organization_id else None)
    channels = session.scalars(select(Channel).where(
        Channel.id.in_([c.channel_id for c in request.channels])).order_by(Channel.id))
    result = request.result or {}
    counts = {action: {hashed.get(s, ""): c for s, c in result[action].items()}
              for action in KINDS if action in result}
    files = session.scalars(select(Export).where(Export.request_id == request.id)
                            .order_by(Export.id)) if stage == "done" else ()
    return {
        "format": FORMAT,
        "stage": stage,
        "issuer": config.service.message_id_domain,
        "issued_at": _time(utcnow()),
        "reference": request.reference,
        "controller": organization.name if organization else None,
        "request_mail_sha256": mail.sha256 if mail else None,
        "received_at": _time(request.received_at),
        "due_at": _time(request.deadline_extended_until or request.due_at),
        "done_at": _time(request.done_at),
        "kinds": list(request.kinds),
        "channels": [{"kind": c.kind, "name": c.name} for c in channels],
        "subjects": sorted(hashed.values()),
        "counts": counts,
        "files": [{"name": f.filename, "size": f.size, "sha256": f.sha256,
                   "subject": hashed.get(f.subject, "")} for f in files],
    }


def sign(fields: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """proof.json's bytes for these fields."""
    digests = {name: digest(value) for name, value in fields.items()}
    signature = key.sign(canonical(digests))
    document = {
        "proof": fields,
        "digests": digests,
        "signature": {"algorithm": "Ed25519", "key": signing.key_id(key.public_key()),
                      "value": base64.b64encode(signature).decode("ascii")},
    }
    return render(document)


def render(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def make(session: Session, config: Config, request: Request, stage: str) -> bytes:
    return sign(statement(session, config, request, stage), signing.private_key(config))


# -- verifying ----------------------------------------------------------------------


@dataclass
class Verdict:
    """A proof checked: `problem` is None when it holds; else a code, and `where`
    names the field that was changed where that can be told."""

    problem: str | None = None
    where: str | None = None
    fields: dict[str, Any] = default(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(data: bytes, public: Ed25519PublicKey) -> Verdict:
    try:
        document = json.loads(data.decode("utf-8"))
        fields, digests = document["proof"], document["digests"]
        seal = document["signature"]
        signature = base64.b64decode(seal["value"], validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
        return Verdict("unreadable")
    if not isinstance(fields, dict) or not isinstance(digests, dict):
        return Verdict("unreadable")
    if seal.get("algorithm") != "Ed25519":
        return Verdict("algorithm", "signature.algorithm")
    if seal.get("key") != signing.key_id(public):
        return Verdict("other_key", "signature.key", fields)
    recomputed = {name: digest(value) for name, value in fields.items()}
    if not _valid(public, signature, recomputed):
        if not _valid(public, signature, digests):
            return Verdict("signature", "signature.value", fields)
        changed = sorted(n for n in digests.keys() | recomputed.keys()
                         if digests.get(n) != recomputed.get(n))
        return Verdict("field", f"proof.{changed[0]}" if changed else None, fields)
    if digests != recomputed:  # the values hold; only the copy of a digest was changed
        changed = sorted(n for n in digests.keys() | recomputed.keys()
                         if digests.get(n) != recomputed.get(n))
        return Verdict("digest", f"digests.{changed[0]}", fields)
    if set(fields) != set(FIELDS) or fields.get("format") != FORMAT:
        return Verdict("format", "proof.format", fields)
    if render(document) != data:  # same content, but not the bytes we wrote
        return Verdict("layout", None, fields)
    return Verdict(None, None, fields)


def _valid(public: Ed25519PublicKey, signature: bytes, digests: dict[str, Any]) -> bool:
    try:
        public.verify(signature, canonical(digests))
    except InvalidSignature:
        return False
    return True


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
