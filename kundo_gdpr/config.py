"""config.toml -> frozen dataclasses.

The file is read once at start-up. An unknown key or a value of the wrong type
stops start-up with a `ConfigError` naming the key, so a typo never silently
falls back to a default. Secrets never live in the file: the file names an
environment variable (`*_env` keys) and `Config.secret()` reads it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


@dataclass(frozen=True)
class ServiceConfig:
    support_addresses: tuple[str, ...] = ("support@kundo.se",)
    # Our replies' Message-IDs end in this domain; mail that refers to it is ours.
    message_id_domain: str = "gdpr.kundo.se"
    from_name: str = "Kundo GDPR"
    poll_seconds: float = 10.0
    # More replies to one address within an hour are held, not sent; 0: no limit.
    max_replies_per_sender_per_hour: int = 20
    # More held replies than this to one address go out at once as one digest; 0: never.
    digest_after: int = 5
    # A stage that fails on the same row this many times gives it up: the request
    # ends failed or quarantined with the error as its reason, and the loop goes on.
    max_attempts: int = 3


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/kundo-gdpr.sqlite3"


@dataclass(frozen=True)
class MaildirConfig:
    path: str = "var/inbox"


@dataclass(frozen=True)
class ImapConfig:
    host: str = "localhost"
    port: int = 993
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str = ""
    password_env: str = "KUNDO_GDPR_IMAP_PASSWORD"
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    timeout_seconds: float = 60.0
    idle_seconds: float = 540.0
    # A PEM file of CA certificates to trust instead of the system store.
    ca_file: str = ""


@dataclass(frozen=True)
class IntakeConfig:
    source: Literal["maildir", "imap"] = "maildir"
    # Larger messages are not stored but moved to quarantine for a person to look at.
    max_message_bytes: int = 50 * 1024 * 1024
    maildir: MaildirConfig = field(default_factory=MaildirConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)


@dataclass(frozen=True)
class FolderConfig:
    path: str = "var/outbox"


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: Literal["tls", "starttls", "plain"] = "starttls"
    username: str = ""
    password_env: str = "KUNDO_GDPR_SMTP_PASSWORD"
    timeout_seconds: float = 60.0
    ca_file: str = ""


@dataclass(frozen=True)
class OutboxConfig:
    transport: Literal["folder", "smtp"] = "folder"
    max_attempts: int = 12
    retry_base_seconds: float = 30.0
    folder: FolderConfig = field(default_factory=FolderConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)


@dataclass(frozen=True)
class PolicyConfig:
    auto_approve: bool = False
    erase_needs_admin: bool = True
    confirm_by_mail: bool = False
    # Four-eyes: an erasure one agent approved runs only once a second agent confirms.
    erase_needs_second_agent: bool = False
    # Who may download an export file from the request page.
    export_download: Literal["admins", "agents"] = "admins"
    # An erasure touching more items than this needs the subject's address typed to approve,
    # and (as one touching more subjects than review_subjects_above) an admin's review.
    review_erase_above: int = 500
    review_subjects_above: int = 5


@dataclass(frozen=True)
class ExportConfig:
    path: str = "var/exports"
    max_attachment_bytes: int = 10 * 1024 * 1024
    link_ttl_hours: int = 24


@dataclass(frozen=True)
class EraseConfig:
    """What erasing takes away, per channel kind (see config.toml)."""

    mail: Literal["conversations", "messages"] = "conversations"
    forum: Literal["posts", "delete_threads"] = "posts"
    chat: Literal["sessions"] = "sessions"
    # Hours an erase can be undone (its before images kept encrypted); 0: final at once.
    undo_hours: int = 72


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    secret_env: str = "KUNDO_GDPR_SECRET"
    # A session ends after this many minutes without a request, and after
    # session_max_hours however busy it is.
    session_idle_minutes: int = 60
    session_max_hours: int = 12
    # Failed sign-ins slow down further sign-ins from the same address and for
    # the same account (a growing delay up to this many seconds); nothing is locked.
    signin_max_delay_seconds: float = 1.0
    # Proxies (addresses or networks) whose X-Forwarded-For names the client; the
    # client address of any other peer is the peer itself.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthConfig:
    """/healthz and /metrics (see config.toml [health])."""

    # Names the variable holding the bearer token; unset or empty: loopback only.
    token_env: str = "KUNDO_GDPR_METRICS_TOKEN"
    max_fetch_age_seconds: float = 600.0
    max_stage_failures_per_hour: int = 10


@dataclass(frozen=True)
class DeskConfig:
    # Name of a DeskStore implementation in kundo_gdpr.desk.REGISTRY.
    store: str = "sql"


@dataclass(frozen=True)
class AuthConfig:
    # false: unauthenticated senders are not sent to review (tests and demos only).
    require: bool = True
    # Authentication-Results headers are believed only from these receivers.
    trusted_authserv_ids: tuple[str, ...] = ()
    # A file of "selector._domainkey.domain TXT-record" lines used instead of DNS.
    pinned_keys: str = ""


@dataclass(frozen=True)
class RecordsConfig:
    """Keyed subject hashes, the erasure ledger and signed proofs (see config.toml)."""

    hash_key_env: str = "KUNDO_GDPR_HASH_KEY"
    old_hash_keys_env: str = "KUNDO_GDPR_OLD_HASH_KEYS"
    hash_key_file: str = "var/hash.key"
    ledger_path: str = "var/erasure-ledger.jsonl"
    proof_key_env: str = "KUNDO_GDPR_PROOF_KEY"
    proof_key_file: str = "var/proof-key.pem"


@dataclass(frozen=True)
class RetentionConfig:
    """How long our own records keep people in full (see config.toml)."""

    request_days: int = 730
    mailbox_days: int = 30


@dataclass(frozen=True)
class Config:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    erase: EraseConfig = field(default_factory=EraseConfig)
    web: WebConfig = field(default_factory=WebConfig)
    desk: DeskConfig = field(default_factory=DeskConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    records: RecordsConfig = field(default_factory=RecordsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    # Directory that relative paths in the file are resolved against.
    root: Path = Path(".")

    def path(self, relative: str) -> Path:
        """A path from the config, resolved against the config file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    def secret(self, env_name: str) -> str:
        """The value of a secret named by an `*_env` key; empty when unset."""
        return os.environ.get(env_name, "")

    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str(self.path(rest).resolve())
        return url


def load(path: Path | str | None) -> Config:
    """Read a config file; None gives the embedded defaults rooted at the cwd."""
    if path is None:
        return Config(root=Path.cwd())
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {p}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: {exc}") from exc
    return from_dict(data, root=p.resolve().parent)


def from_dict(data: dict[str, Any], root: Path) -> Config:
    """Build a Config from parsed TOML, naming the first bad key."""
    built = _build(Config, data, "")
    if built.erase.undo_hours < 0:
        raise ConfigError("erase.undo_hours: must be 0 (no undo) or more hours")
    _plain_only_on_loopback("intake.imap", built.intake.imap.security, built.intake.imap.host)
    _plain_only_on_loopback("outbox.smtp", built.outbox.smtp.security, built.outbox.smtp.host)
    _meaningful(built)
    return dataclasses.replace(built, root=root)


def _meaningful(config: Config) -> None:
    """Values of the right type that still cannot work, named by their key.
    (`desk.store` is checked against the registered stores at start-up: cli.main.)"""
    if not config.service.support_addresses:
        raise ConfigError("service.support_addresses: must name at least one address "
                          "(replies come from the first)")
    for address in config.service.support_addresses:
        if "@" not in address.strip("@"):
            raise ConfigError(f"service.support_addresses: {address!r} is not an address")
    url = urllib.parse.urlsplit(config.web.base_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(f"web.base_url: must be an http:// or https:// address, "
                          f"got {config.web.base_url!r}")
    if config.service.max_attempts < 1:
        raise ConfigError("service.max_attempts: must be at least 1")
    for proxy in config.web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy)
        except ValueError as exc:
            raise ConfigError(f"web.trusted_proxies: {proxy!r} is not an address or a "
                              f"network such as 10.0.0.0/8 ({exc})") from exc
    if config.retention.request_days < 1:
        raise ConfigError("retention.request_days: must be at least 1 day")
    if config.retention.mailbox_days < 0:
        raise ConfigError("retention.mailbox_days: must be 0 (at once) or more days")


def check_registered(key: str, name: str, registered: typing.Iterable[str]) -> None:
    """A key that names one of a registry's entries (a desk store, a transport)."""
    known = sorted(registered)
    if name not in known:
        raise ConfigError(f"{key}: {name!r} is not registered (registered: {', '.join(known)})")


def _plain_only_on_loopback(section: str, security: str, host: str) -> None:
    """Passwords and requests never cross a network in clear text."""
    if security == "plain" and not is_loopback(host):
        raise ConfigError(
            f"{section}.security: 'plain' is allowed only on loopback, not for host {host!r}"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_T = typing.TypeVar("_T")


def _build(cls: type[_T], data: Any, prefix: str) -> _T:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "root"}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config key: {prefix}{unknown[0]}")
    values = {name: _value(hints[name], data[name], f"{prefix}{name}") for name in data}
    return cls(**values)


def _value(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")  # type: ignore[arg-type]
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"{key}: {value!r} is not one of {choices}")
        return value
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list")
        return tuple(_value(item, v, f"{key}[]") for v in value)
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{key}: unsupported type")  # not used by Config today
    return _scalar(hint, value, key)


def _scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    if hint in (int, float) and value < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    return value
