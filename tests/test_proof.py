"""proof.json: signed on the demo's requests, verified by the command and by
nothing but `cryptography`, and a changed byte is caught and named."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.cli import main
from kundo_gdpr.config import Config
from kundo_gdpr.demo import run_demo
from kundo_gdpr.models import Export, InboundMail, OutboundMail, Request
from kundo_gdpr.records.hashing import key_ring
from kundo_gdpr.web import make_app
from tests.conftest import make_config

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
ALICE = "alice@example.com"


@pytest.fixture
def demo(tmp_path: Path, db_url: str) -> Config:
    config = make_config(tmp_path, db_url, policy={"auto_approve": True},
                         auth={"require": False})
    run_demo(config)
    return config


def proofs(factory: sessionmaker[Session]) -> list[tuple[str, str, EmailMessage, bytes]]:
    """(reference, purpose, reply, proof.json) of every reply that carries a proof."""
    found = []
    with factory() as session:
        rows = session.execute(select(Request.reference, OutboundMail.purpose, OutboundMail.raw)
                               .join(Request, Request.id == OutboundMail.request_id)
                               .order_by(OutboundMail.id)).all()
    for reference, purpose, raw in rows:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        for part in msg.iter_attachments():
            if part.get_filename() == "proof.json":
                assert isinstance(part, EmailMessage)
                found.append((reference, purpose, msg, part.get_payload(decode=True)))
    return found


def independently_verified(data: bytes, pem: bytes) -> dict[str, Any]:
    """The check a controller can do with `cryptography` alone, from the docs."""
    key = load_pem_public_key(pem)
    assert isinstance(key, Ed25519PublicKey)
    document = json.loads(data)

    def canonical(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    digests = {name: hashlib.sha256(canonical(v)).hexdigest()
               for name, v in document["proof"].items()}
    assert digests == document["digests"]
    key.verify(base64.b64decode(document["signature"]["value"]), canonical(digests))
    fields: dict[str, Any] = document["proof"]
    return fields


async def published_key(aiohttp_client: MakeClient, config: Config, engine: Engine) -> bytes:
    client = await aiohttp_client(make_app(config, engine))
    answer = await client.get("/.well-known/kundo-gdpr-proof.pub")  # no sign-in
    assert answer.status == 200
    return await answer.read()


async def test_the_demos_receipts_and_done_replies_carry_proofs_that_verify(
    demo: Config, engine: Engine, factory: sessionmaker[Session], aiohttp_client: MakeClient,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    pem = await published_key(aiohttp_client, demo, engine)
    (tmp_path / "proof.pub").write_bytes(pem)
    found = proofs(factory)
    assert sorted({p for _, p, _, _ in found}) == ["done", "receipt"]
    ring = key_ring(demo)
    with factory() as session:
        requests = {r.reference: r for r in session.scalars(select(Request))}
        mails = {m.id: m.raw for m in session.scalars(select(InboundMail))}
        for reference, purpose, _msg, data in found:
            request = requests[reference]
            fields = independently_verified(data, pem)
            assert (fields["reference"], fields["stage"]) == (reference, purpose)
            assert fields["request_mail_sha256"] == hashlib.sha256(
                mails[request.inbound_mail_id]).hexdigest()
            assert fields["subjects"] == sorted(ring.hash_subject(s.email)
                                                for s in request.subjects)
            assert fields["kinds"] == request.kinds
            assert b"@example." not in data  # subjects only as keyed hashes
            if purpose == "receipt":
                assert fields["done_at"] is None and fields["counts"] == {}
                continue
            assert fields["done_at"] == request.done_at.isoformat()  # type: ignore[union-attr]
            for action in ("erase", "export"):
                assert fields["counts"].get(action) == (
                    {ring.hash_subject(s): c for s, c in request.result[action].items()}
                    if action in request.kinds else None)
            files = session.scalars(select(Export).where(Export.request_id == request.id))
            assert sorted(f["sha256"] for f in fields["files"]) == sorted(
                hashlib.sha256(Path(e.path).read_bytes()).hexdigest() for e in files)
            path = tmp_path / f"{reference}-{purpose}.json"
            path.write_bytes(data)
            assert main(["--config", str(config_file(demo, tmp_path)), "proof", "verify",
                         str(path), "--public-key", str(tmp_path / "proof.pub")]) == 0
            said = capsys.readouterr().out
            assert said.startswith(f"{path}: VALID.")
            assert f"request {reference} of {fields['controller']} was received" in said
            assert "carried out on" in said
    assert any(f["files"] for _, p, _, d in found if p == "done"
               for f in [json.loads(d)["proof"]])


def config_file(config: Config, folder: Path) -> Path:
    path = folder / "config.toml"
    path.write_text(f'[database]\nurl = "{config.database.url}"\n')
    return path


@pytest.mark.parametrize(("find", "replace", "said"), [
    (b'"reference": "GDPR-', b'"reference": "GDPS-', "The field proof.reference was changed"),
    (b'"posts": 3', b'"posts": 2', "The field proof.counts was changed"),
    (b'"stage": "done"', b'"stage": "dona"', "The field proof.stage was changed"),
    (b'"value": "', b'"value": "A', "It is not a proof.json"),
    (b'"reference": "', b'"reference": "0', "The digest digests.reference was changed"),
    (b'  "digests"', b'   "digests"', "the file's bytes were changed"),
])
def test_a_proof_with_one_byte_changed_fails_and_says_where(
    demo: Config, factory: sessionmaker[Session], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], find: bytes, replace: bytes, said: str,
) -> None:
    (data,) = [d for _, purpose, _, d in proofs(factory)
               if purpose == "done" and b'"erase"' in d]
    assert data.count(find) >= 1
    changed = data.replace(find, replace, 1)
    if find == b'"reference": "':  # the first is the digest's, in "digests" (sorted first)
        assert changed.index(replace) < changed.index(b'"proof"')
    assert sum(a != b for a, b in zip(data, changed, strict=False)) <= 1 or len(data) != len(
        changed)
    path = tmp_path / "proof.json"
    path.write_bytes(changed)
    args = ["--config", str(config_file(demo, tmp_path)), "proof", "verify", str(path)]
    capsys.readouterr()
    assert main(args) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: NOT VALID.") and said in out, out
    path.write_bytes(data)
    assert main(args) == 0
    if b"digests" in find:  # only the layout changed: the content still verifies
        assert independently_verified(changed, public_pem(demo))
        return
    with pytest.raises((InvalidSignature, AssertionError, ValueError)):
        independently_verified(changed, public_pem(demo))


def public_pem(config: Config) -> bytes:
    from kundo_gdpr.records import signing

    return signing.public_pem(signing.private_key(config).public_key())
