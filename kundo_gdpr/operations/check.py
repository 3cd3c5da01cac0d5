"""`kundo-gdpr check`: reach every real part the config names, before going live.

Each part is one small function returning `None` when all is well or the
exact problem; nothing here changes the mailbox, the database or the outbox.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy.exc import SQLAlchemyError

from kundo_gdpr import db
from kundo_gdpr.auth import load_pinned
from kundo_gdpr.config import Config

# Shorter secrets are guessable; the web secret signs sessions and export links.
MIN_SECRET_CHARS = 32
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    part: str
    problem: str | None
    detail: str = ""

    def line(self) -> str:
        if self.problem is None:
            return f"{self.part}: OK" + (f" ({self.detail})" if self.detail else "")
        return f"{self.part}: PROBLEM: {self.problem}"


Check = Callable[[Config], Outcome]


def run(config: Config) -> list[Outcome]:
    """Every part's outcome, in a fixed order."""
    return [check(config) for check in CHECKS]


def database(config: Config) -> Outcome:
    engine = db.make_engine(config.database_url())
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        return Outcome("database", f"cannot connect: {_first_line(exc)}")
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(db.alembic_config(engine)).get_current_head()
    if current != head:
        return Outcome("database", f"migrations at {current or 'none'}, the code needs {head}: "
                       "run `kundo-gdpr db upgrade`")
    return Outcome("database", None, f"{engine.dialect.name}, migrations current ({head})")


def mailbox(config: Config) -> Outcome:
    if config.intake.source == "maildir":
        path = config.path(config.intake.maildir.path)
        return _folder("mailbox", path, "maildir")
    cfg = config.intake.imap
    password = config.secret(cfg.password_env)
    if not password:
        return Outcome("imap", f"${cfg.password_env} is not set")
    context = ssl.create_default_context(cafile=cfg.ca_file or None)
    try:
        client = IMAPClient(cfg.host, cfg.port, ssl=cfg.security == "tls",
                            ssl_context=context if cfg.security != "plain" else None,
                            timeout=min(cfg.timeout_seconds, TIMEOUT_SECONDS))
    except (OSError, IMAPClientError) as exc:
        return Outcome("imap", f"cannot connect to {cfg.host}:{cfg.port}: {_first_line(exc)}")
    try:
        if cfg.security == "starttls":
            client.starttls(context)
        try:
            client.login(cfg.username, password)
        except IMAPClientError as exc:
            return Outcome("imap", f"login as {cfg.username!r} refused: {_first_line(exc)}")
        if not client.folder_exists(cfg.folder):
            return Outcome("imap", f"folder {cfg.folder!r} does not exist")
        missing = [f for f in (cfg.processed_folder, cfg.quarantine_folder)
                   if not client.folder_exists(f)]
    except (OSError, IMAPClientError) as exc:
        return Outcome("imap", _first_line(exc))
    finally:
        _close(client)
    note = f"; {', '.join(missing)} will be created by the worker" if missing else ""
    return Outcome("imap", None, f"{cfg.username}@{cfg.host}, {cfg.security}, "
                   f"folder {cfg.folder}{note}")


def outbox(config: Config) -> Outcome:
    if config.outbox.transport == "folder":
        return _folder("outbox", config.path(config.outbox.folder.path), "folder")
    cfg = config.outbox.smtp
    password = config.secret(cfg.password_env)
    if cfg.username and not password:
        return Outcome("smtp", f"${cfg.password_env} is not set")
    context = ssl.create_default_context(cafile=cfg.ca_file or None)
    timeout = min(cfg.timeout_seconds, TIMEOUT_SECONDS)
    try:
        smtp = (smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=context)
                if cfg.security == "tls" else smtplib.SMTP(cfg.host, cfg.port, timeout=timeout))
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome("smtp", f"cannot connect to {cfg.host}:{cfg.port}: {_first_line(exc)}")
    try:
        return _smtp_session(smtp, config, password, context)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _smtp_session(smtp: smtplib.SMTP, config: Config, password: str,
                  context: ssl.SSLContext) -> Outcome:
    cfg = config.outbox.smtp
    try:
        smtp.ehlo()
        if cfg.security == "starttls":
            if not smtp.has_extn("starttls"):
                return Outcome("smtp", f"{cfg.host} does not offer STARTTLS")
            smtp.starttls(context=context)
            smtp.ehlo()
        if cfg.username:
            smtp.login(cfg.username, password)
    except smtplib.SMTPAuthenticationError as exc:
        said = exc.smtp_error
        text = said.decode(errors="replace") if isinstance(said, bytes) else said
        return Outcome("smtp", f"login as {cfg.username!r} refused: {exc.smtp_code} {text}")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome("smtp", _first_line(exc))
    login = f", login {cfg.username}" if cfg.username else ", no login"
    return Outcome("smtp", None, f"{cfg.host}:{cfg.port}, EHLO, {cfg.security}{login}")


def dkim(config: Config) -> Outcome:
    if config.auth.pinned_keys:
        path = config.path(config.auth.pinned_keys)
        try:
            pinned = load_pinned(path)
        except OSError as exc:
            return Outcome("dkim", f"pinned keys {path}: {exc.strerror or exc}")
        except ValueError as exc:
            return Outcome("dkim", f"pinned keys {path}: {exc}")
        if not pinned:
            return Outcome("dkim", f"pinned keys {path} holds no key")
        keyless = sorted(name for name, record in pinned.items() if b"p=" not in record)
        if keyless:
            return Outcome("dkim", f"pinned keys {path}: no p= (public key) for {keyless[0]}")
        return Outcome("dkim", None, f"{len(pinned)} pinned key(s), DNS for the rest")
    return _dns(config)


def _dns(config: Config) -> Outcome:
    import dns.exception
    import dns.resolver

    domain = config.service.support_addresses[0].rpartition("@")[2]
    name = f"_dmarc.{domain}"
    try:
        dns.resolver.resolve(name, "TXT", lifetime=TIMEOUT_SECONDS)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        pass  # an answer all the same: the resolver works
    except dns.exception.DNSException as exc:
        return Outcome("dkim", f"DNS does not answer (asked TXT {name}): {_first_line(exc)}")
    return Outcome("dkim", None, "keys from DNS")


def web_secret(config: Config) -> Outcome:
    name = config.web.secret_env
    secret = config.secret(name)
    if not secret:
        return Outcome("web secret", f"${name} is not set: sessions and export links would "
                       "use a random secret that changes on every start")
    if len(secret) < MIN_SECRET_CHARS:
        return Outcome("web secret", f"${name} has {len(secret)} characters; use at least "
                       f"{MIN_SECRET_CHARS}")
    return Outcome("web secret", None, f"${name}")


def health_token(config: Config) -> Outcome:
    name = config.health.token_env
    if not config.secret(name):
        return Outcome("metrics token", None, f"${name} unset: /metrics and /healthz "
                       "answer loopback clients only")
    return Outcome("metrics token", None, f"${name}")


def proof_key(config: Config) -> Outcome:
    """The Ed25519 key that signs proofs, when one is given (env or file)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    records = config.records
    pem = config.secret(records.proof_key_env).encode()
    where = f"${records.proof_key_env}"
    if not pem:
        path = config.path(records.proof_key_file)
        if not path.exists():
            return Outcome("proof key", None, f"not configured: made on first use at {path}")
        pem, where = path.read_bytes(), str(path)
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        return Outcome("proof key", f"{where} is not a PEM private key: {_first_line(exc)}")
    if not isinstance(key, Ed25519PrivateKey):
        return Outcome("proof key", f"{where} is not an Ed25519 key")
    return Outcome("proof key", None, f"Ed25519, from {where}")


def _folder(part: str, path: Path, what: str) -> Outcome:
    probe = path if path.exists() else path.parent
    if not probe.exists():
        return Outcome(part, f"{what} {path}: neither it nor its parent folder exists")
    if not os.access(probe, os.W_OK | os.X_OK):
        return Outcome(part, f"{what} {path}: not writable by this user")
    return Outcome(part, None, f"{what} {path}")


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (OSError, IMAPClientError):
        client.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


CHECKS: tuple[Check, ...] = (database, mailbox, outbox, dkim, web_secret, proof_key,
                             health_token)
