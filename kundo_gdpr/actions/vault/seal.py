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
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kundo_gdpr.actions.vault.base import CODECS, COLUMNS, Capture, Image, VaultError
from kundo_gdpr.models import UndoWindow


def seal(key: bytes, aad: bytes, capture: Capture) -> tuple[bytes, bytes]:
    """One blob for the batch (`plain`), compressed, then AES-GCM with a fresh nonce."""
    packer = zlib.compressobj(1)
    packed = b"".join([*map(packer.compress, plain(capture)), packer.flush()])
    nonce = os.urandom(12)
    return nonce, AESGCM(key).encrypt(nonce, packed, aad)


def plain(capture: Capture) -> list[bytes]:
    """The batch's images as compact JSON, version 3, in pieces (PostgreSQL's
    images are megabytes, compressed as they came, never joined):

        {"v": 3, "t": [[table, columns, codecs, rows], ...], "d": {table: [deleted ids]}}

    PostgreSQL's images are JSON already, and their `codecs` (`CODECS`) say how
    to read each column back. The rows captured in Python (SQLite, the ORM
    paths) are tagged per value (codecs null), as in version 2: SQLite's
    columns hold whatever type of value was stored.
    """
    pieces = [b'{"v":3,"t":[']
    for name, parts in capture.json_rows.items():
        if parts:
            head = f"[{_dumps(name)},{_dumps(COLUMNS[name])},{_dumps(CODECS[name])},["
            pieces += [b"," if len(pieces) > 1 else b"", head.encode()]
            for n, part in enumerate(parts):
                pieces += [b"," if n else b"", part]
            pieces.append(b"]]")
    for name, rows in capture.rows.items():
        if rows:
            pieces += [b"," if len(pieces) > 1 else b"",
                       _dumps([name, COLUMNS[name], None, list(rows.values())]).encode()]
    deleted = {name: sorted(ids) for name, ids in capture.deleted.items() if ids}
    return [*pieces, f'],"d":{_dumps(deleted)}}}'.encode()]


def _dumps(value: Any) -> str:
    # The encoder's `default` sees only what JSON has no form for: no Python per row.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_tagged)


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
    if data["v"] == 2:  # [table, columns, rows, deleted ids] per table, values tagged
        data = {"t": [[name, columns, None, rows] for name, columns, rows, _ in data["t"]],
                "d": {name: deleted for name, _, _, deleted in data["t"]}}
    found = []
    for name, columns, codecs, rows in data["t"]:
        gone = set(data["d"].get(name, ()))
        read = _reader(codecs)
        for row in rows:
            values = dict(zip(columns, read(row), strict=True))
            found.append(Image(name, "delete" if values["id"] in gone else "update", values))
    return found


def _reader(codecs: list[str] | None) -> Callable[[list[Any]], list[Any]]:
    """A row's values from its JSON: by the columns' codecs, or by each value's tag."""
    if codecs is None:
        return lambda row: [_decode(v) for v in row]
    at = [(n, _CODECS[codec]) for n, codec in enumerate(codecs) if codec]

    def read(row: list[Any]) -> list[Any]:
        for n, decode in at:
            if row[n] is not None:
                row[n] = decode(row[n])
        return row
    return read


def _timestamp(text: str) -> dt.datetime | str:
    # PostgreSQL's `infinity` has no Python form: restored as the text it was,
    # which PostgreSQL reads back as the same value.
    return text if text in _INFINITE else dt.datetime.fromisoformat(text)


_INFINITE = frozenset({"infinity", "-infinity"})
_CODECS: dict[str, Callable[[str], Any]] = {
    "t": _timestamp,
    "d": dt.date.fromisoformat,
    "b": base64.b64decode,  # PostgreSQL's base64 has a line break every 76 characters
}


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
    """A tagged value (`_encode`): its one key is the codec that reads it back."""
    if not isinstance(value, dict):
        return value
    ((tag, text),) = value.items()
    return _CODECS[tag](text)
