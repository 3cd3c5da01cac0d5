"""Transports deliver an outbox row: a folder of .eml files, or SMTP, chosen
by `outbox.transport`. The contract and its one error type are in
`replies.delivery` (re-exported here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from kundo_gdpr.config import Config
from kundo_gdpr.replies.delivery import Transport, TransportError

__all__ = ["REGISTRY", "FolderTransport", "Transport", "TransportError", "make_transport"]


class FolderTransport:
    """Writes each reply as `<message-id>.eml`; a resend overwrites the same file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def send(self, sender: str, recipient: str, raw: bytes, message_id: str) -> None:
        name = eml_name(message_id)
        tmp = self.path / f".{name}.tmp"
        try:
            tmp.write_bytes(raw)
            os.replace(tmp, self.path / name)
        except OSError as exc:
            raise TransportError(f"cannot write {name}: {exc}") from exc


def eml_name(message_id: str) -> str:
    """The outbox folder's file name for a reply (its Message-ID, made safe)."""
    return re.sub(r"[^A-Za-z0-9._@-]", "_", message_id.strip("<>")) + ".eml"


def _folder(config: Config) -> Transport:
    return FolderTransport(config.path(config.outbox.folder.path))


def _smtp(config: Config) -> Transport:
    from kundo_gdpr.replies.smtp import SmtpTransport

    return SmtpTransport(config.outbox.smtp, config.secret(config.outbox.smtp.password_env))


REGISTRY: dict[str, Callable[[Config], Transport]] = {"folder": _folder, "smtp": _smtp}


def make_transport(config: Config) -> Transport:
    return REGISTRY[config.outbox.transport](config)
