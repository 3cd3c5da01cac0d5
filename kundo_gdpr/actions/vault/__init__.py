"""The safety window: an erase kept undoable for `[erase] undo_hours` (crypto-shredding).

While an erase runs in a `watched` session, the before image of every row it
deletes or changes (all columns, as the driver gives them, so restoring writes
back the same bytes), and of every row a DELETE reaches through ON DELETE
CASCADE / SET NULL, is kept in the transaction's `Capture`, taken in the
statement itself wherever the database allows:

- an ORM DELETE returns its rows (DELETE … RETURNING) instead of a read
  before it; what it will reach through foreign keys is read first;
- an ORM UPDATE (and a bulk UPDATE by primary key) reads its rows first;
- on PostgreSQL, the SQL eraser's one statement per batch (data-modifying
  CTEs) gets CTEs that copy the images, cascades to any depth included, as
  JSON text into the connection's temp table in the same statement and
  snapshot; they are drained into the `Capture` before the next capture and
  at commit, a string per table.

When the batch commits, its images are sealed as one blob with the request's
random key (AES-256-GCM, a fresh nonce) into one `vault_batches` row, in the
same transaction: the vault holds exactly what the committed batches took.
PostgreSQL's JSON goes into the blob as it came: Python never handles its rows.

A statement the capture cannot see (raw SQL, a Core statement on the bare
connection) changing a desk table inside a watched session raises
`VaultError` before it runs: an erase is never half kept.

`undo` restores every row (inserting the deleted, writing back the changed)
or nothing; `close_due` deletes the key and the batches when the window ends.

Modules: `base` (the desk tables, `Capture`), `capture` (the session's
events, the ORM paths, sealing at commit), `statement` (PostgreSQL: images
kept inside the erasing statement), `seal` (the blob's formats), `undo`.
"""

from __future__ import annotations

from kundo_gdpr.actions.vault.base import DESK_TABLES, Capture, Image, Key, VaultError
from kundo_gdpr.actions.vault.capture import Watch, watched
from kundo_gdpr.actions.vault.seal import seal, unseal
from kundo_gdpr.actions.vault.undo import (
    UndoRefused,
    due,
    images,
    open_until,
    restore,
    run_window,
    shred,
    window_of,
)

__all__ = [
    "DESK_TABLES", "Capture", "Image", "Key", "UndoRefused", "VaultError", "Watch", "due",
    "images", "open_until", "restore", "run_window", "seal", "shred", "unseal", "watched",
    "window_of",
]
