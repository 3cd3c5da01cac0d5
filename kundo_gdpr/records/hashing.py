"""Keyed hashes of subjects (HMAC-SHA256 of the normalised address).

The key comes from the environment variable named by `records.hash_key_env`;
when that is unset, from `records.hash_key_file`, which is created with a new
random key on first use (mode 0600), so an embedded install works at once.
Older keys (`records.old_hash_keys_env`, comma-separated) are kept for
matching only: rotating the key never orphans what was hashed before.

A hash is written with the id of the key that made it, so a reader knows
which key to match with, and says so when it does not have that key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from kundo_gdpr.config import Config
from kundo_gdpr.identity import subject_key


@dataclass(frozen=True)
class HashKey:
    id: str
    secret: bytes

    def digest(self, normalised: str) -> str:
        return hmac.new(self.secret, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """The current key (hashes new things) and older ones (match old things)."""

    current: HashKey
    older: tuple[HashKey, ...] = ()

    def get(self, key_id: str) -> HashKey | None:
        return next((k for k in (self.current, *self.older) if k.id == key_id), None)

    def hash_subject(self, address: str) -> str:
        """`key id:hex` of the address's normalised form ("" for a non-address)."""
        found = subject_key(address)
        return f"{self.current.id}:{self.current.digest(found)}" if found else ""


def key_id(secret: bytes) -> str:
    """A short public name for a key that reveals nothing usable about it."""
    return "k" + hashlib.sha256(b"kundo-gdpr hash key id\0" + secret).hexdigest()[:10]


def make_key(secret: str | bytes) -> HashKey:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return HashKey(key_id(raw), raw)


def key_ring(config: Config) -> KeyRing:
    current = config.secret(config.records.hash_key_env).strip()
    if not current:
        current = _key_file(config.path(config.records.hash_key_file))
    older = [s.strip() for s in config.secret(config.records.old_hash_keys_env).split(",")]
    return KeyRing(make_key(current), tuple(make_key(s) for s in older if s))


def _key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(32)
    try:  # O_EXCL: two workers starting together agree on one key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(fresh + "\n")
        out.flush()
        os.fsync(out.fileno())
    return fresh


def masked(address: str) -> str:
    """"anna@example.se" -> "a***@e******.se": enough to recognise, not to use."""
    found = subject_key(address) or address
    local, _, domain = found.rpartition("@")
    if not local:
        return "***"
    name, dot, top = domain.rpartition(".")
    if not dot:
        name, top = domain, ""
    hidden = f"{name[:1]}{'*' * max(len(name) - 1, 1)}"
    return f"{local[:1]}***@{hidden}{dot}{top}"


class Concealed(TypedDict):
    subject_hash: str
    subject_masked: str


def concealed(ring: KeyRing, address: str) -> Concealed:
    """How our own records name a subject they must not hold in clear: the keyed
    hash (to match with the key) and the masked form (to show to people)."""
    return Concealed(subject_hash=ring.hash_subject(address), subject_masked=masked(address))
