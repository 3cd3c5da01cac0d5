"""`kundo-gdpr check` against real parts: Dovecot over STARTTLS, aiosmtpd with
STARTTLS and login, the database, pinned DKIM keys and the secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from sqlalchemy import Engine

from kundo_gdpr import db
from kundo_gdpr.cli import main
from tests import servers
from tests.servers import Certificate, Dovecot, SmtpServer, free_port

certificate = servers.certificate
dovecot_tls = servers.dovecot_tls

SECRET = "x" * 40
PINNED = ("sel._domainkey.cykelbolaget.se v=DKIM1; k=rsa; "
          "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n")


@pytest.fixture
def smtp_starttls(certificate: Certificate) -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port(), cert=certificate, users={"gdpr": "smtp-secret"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, dovecot_tls: Dovecot) -> None:
    monkeypatch.setenv("KUNDO_TEST_IMAP_PASSWORD", dovecot_tls.password)
    monkeypatch.setenv("KUNDO_TEST_SMTP_PASSWORD", "smtp-secret")
    monkeypatch.setenv("KUNDO_TEST_SECRET", SECRET)
    key = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    monkeypatch.setenv("KUNDO_TEST_PROOF_KEY", key.decode())


def write_config(tmp_path: Path, db_url: str, imap: Dovecot, smtp: SmtpServer,
                 cert: Certificate) -> Path:
    (tmp_path / "pinned.txt").write_text(PINNED)
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "intake": {"source": "imap", "imap": {
            "host": "127.0.0.1", "port": imap.port, "security": "starttls",
            "username": imap.user, "password_env": "KUNDO_TEST_IMAP_PASSWORD",
            "ca_file": str(cert.cert_file), "timeout_seconds": 5}},
        "outbox": {"transport": "smtp", "smtp": {
            "host": "127.0.0.1", "port": smtp.port, "security": "starttls",
            "username": "gdpr", "password_env": "KUNDO_TEST_SMTP_PASSWORD",
            "ca_file": str(cert.cert_file), "timeout_seconds": 5}},
        "web": {"secret_env": "KUNDO_TEST_SECRET"},
        "auth": {"pinned_keys": "pinned.txt"},
        "health": {"token_env": "KUNDO_TEST_METRICS_TOKEN_UNSET"},
        "records": {"proof_key_env": "KUNDO_TEST_PROOF_KEY"},
    }
    path = tmp_path / "config.toml"
    path.write_text(_toml(data))
    return path


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """Just enough TOML for these tables of strings and numbers."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in data.items()
             if not isinstance(value, dict)]
    text = (f"[{prefix}]\n" if prefix and lines else "") + "".join(f"{ln}\n" for ln in lines)
    for key, value in data.items():
        if isinstance(value, dict):
            text += _toml(value, f"{prefix}.{key}" if prefix else key)
    return text


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    code = main(["--config", str(path), "check"])
    out = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    return code, lines


def test_check_says_ok_for_every_part_of_a_good_config(
    tmp_path: Path, engine: Engine, db_url: str, dovecot_tls: Dovecot,
    smtp_starttls: SmtpServer, certificate: Certificate, env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = check(write_config(tmp_path, db_url, dovecot_tls, smtp_starttls, certificate),
                        capsys)
    assert list(lines) == ["database", "imap", "smtp", "dkim", "web secret", "proof key",
                           "metrics token"]
    assert all(v.startswith("OK") for v in lines.values()), lines
    assert code == 0
    assert "migrations current" in lines["database"]
    assert "starttls" in lines["imap"] and "login gdpr" in lines["smtp"]
    assert "1 pinned key" in lines["dkim"]
    assert lines["proof key"] == "OK (Ed25519, from $KUNDO_TEST_PROOF_KEY)"
    assert [(user, ok) for _, user, ok in smtp_starttls.logins] == [("gdpr", True)]
    assert smtp_starttls.received == []  # checking sends nothing


def test_check_names_the_imap_login_when_the_password_is_wrong(
    tmp_path: Path, engine: Engine, db_url: str, dovecot_tls: Dovecot,
    smtp_starttls: SmtpServer, certificate: Certificate, env: None,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUNDO_TEST_IMAP_PASSWORD", "wrong")
    code, lines = check(write_config(tmp_path, db_url, dovecot_tls, smtp_starttls, certificate),
                        capsys)
    assert code == 1
    assert lines["imap"].startswith("PROBLEM: login as 'kundo' refused")
    assert [part for part, v in lines.items() if not v.startswith("OK")] == ["imap"]


def test_check_names_an_unmigrated_database_a_missing_secret_and_a_wrong_smtp_password(
    tmp_path: Path, db_url: str, dovecot_tls: Dovecot, smtp_starttls: SmtpServer,
    certificate: Certificate, env: None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUNDO_TEST_SMTP_PASSWORD", "wrong")
    monkeypatch.setenv("KUNDO_TEST_SECRET", "short")
    monkeypatch.setenv("KUNDO_TEST_PROOF_KEY", "not a key")
    engine = db.make_engine(db_url)
    db.upgrade(engine, "0005")
    engine.dispose()
    code, lines = check(write_config(tmp_path, db_url, dovecot_tls, smtp_starttls, certificate),
                        capsys)
    assert code == 1
    assert lines["database"].startswith("PROBLEM: migrations at 0005, the code needs ")
    assert lines["smtp"].startswith("PROBLEM: login as 'gdpr' refused: 535")
    assert lines["web secret"] == ("PROBLEM: $KUNDO_TEST_SECRET has 5 characters; "
                                   "use at least 32")
    assert lines["proof key"].startswith("PROBLEM: $KUNDO_TEST_PROOF_KEY is not a PEM private key")
    assert lines["imap"].startswith("OK")
