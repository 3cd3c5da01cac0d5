"""Sealing a batch's before images into one blob, and reading them back.

A blob is compact JSON, compressed (zlib), then AES-256-GCM with the
window's key, a fresh nonce and the batch's place as associated data.
Every format ever written stays readable: a vault sealed by an older
version must still undo.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import zlib
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kundo_gdpr.actions.vault.base import COLUMNS, Capture, Image, VaultError
from kundo_gdpr.models import UndoWindow


def seal(key: bytes, aad: bytes, capture: Capture) -> tuple[bytes, bytes]:
    """One blob for the batch: per table its column names, rows and deleted ids,
    as compact JSON (version 2), compressed, then AES-GCM with a fresh nonce."""
    tables = [[name, COLUMNS[name], list(rows.values()), sorted(capture.deleted.get(name, ()))]
              for name, rows in capture.rows.items() if rows]
    # The encoder's `default` sees only what JSON has no form for: no Python per row.
    plain = json.dumps({"v": 2, "t": tables}, separators=(",", ":"), default=_tagged).encode()
    nonce = os.urandom(12)
    return nonce, AESGCM(key).encrypt(nonce, zlib.compress(plain, 1), aad)


def _tagged(value: Any) -> Any:
    encoded = _encode(value)
    if encoded is value:  # a subclass of a plain type, say
        raise VaultError(f"the undo vault cannot keep a {type(value).__name__} value")
    return encoded


def unseal(key: bytes, aad: bytes, nonce: bytes, sealed: bytes) -> list[Image]:
    data = json.loads(zlib.decompress(AESGCM(key).decrypt(nonce, sealed, aad)))
    if isinstance(data, list):  # version 1: [table, op, {column: value}] per image
        return [Image(t, op, {k: _decode(v) for k, v in values.items()})
                for t, op, values in data]
    found = []
    for name, columns, rows, deleted in data["t"]:
        gone = set(deleted)
        for row in rows:
            values = {c: _decode(v) for c, v in zip(columns, row, strict=True)}
            found.append(Image(name, "delete" if values["id"] in gone else "update", values))
    return found


def aad(window: UndoWindow, seq: int) -> bytes:
    # Binds each batch to its erase and place: batches cannot be swapped unnoticed.
    if window.request_id is not None:
        return f"kundo-gdpr vault {window.request_id}:{seq}".encode()
    return f"kundo-gdpr vault run {window.retention_run_id}:{seq}".encode()


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | memoryview):
        return {"b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    raise VaultError(f"the undo vault cannot keep a {type(value).__name__} value")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "b" in value:
        return base64.b64decode(value["b"])
    if "t" in value:
        return dt.datetime.fromisoformat(value["t"])
    return dt.date.fromisoformat(value["d"])
