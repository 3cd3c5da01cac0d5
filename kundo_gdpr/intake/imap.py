"""An IMAP folder as a mail source, with IDLE as a wake-up hint.

Messages are read with BODY.PEEK[] (the server's \\Seen flag is left alone)
and keyed by (UIDVALIDITY, UID). Once stored they are moved to the processed
folder, so the source folder itself is the queue. A changed UIDVALIDITY only
changes the keys: the store recognises the raw bytes by their hash.

Every socket call has a timeout. A socket error or timeout drops the
connection; the next call reconnects, with backoff after repeated failures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from kundo_gdpr.config import ImapConfig, is_loopback
from kundo_gdpr.intake.source import FetchedMail

log = logging.getLogger(__name__)

FETCH_BATCH = 50
MAX_BACKOFF_SECONDS = 60.0
# Errors after which the connection is no longer usable.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes socket.timeout and ssl.SSLError
    imaplib.IMAP4.abort,
    EOFError,
)

_T = TypeVar("_T")


class ImapSource:
    def __init__(self, config: ImapConfig, password: str) -> None:
        if config.security == "plain" and not is_loopback(config.host):
            # Config validation refuses this too; a hand-built config must not slip by.
            raise ValueError(
                f"intake.imap.security = 'plain' is allowed only on loopback, not {config.host}"
            )
        self.config = config
        self.password = password
        self.name = f"imap:{config.username}@{config.host}/{config.folder}"
        self._client: IMAPClient | None = None
        self._uidvalidity: int | None = None
        self._failures = 0
        self._context: ssl.SSLContext | None = None
        self._stop = threading.Event()

    def interrupt_with(self, stop: threading.Event) -> None:
        """Cut every backoff pause short once `stop` is set (SIGTERM)."""
        self._stop = stop

    # -- MailSource ---------------------------------------------------------

    def pending(self) -> Iterator[FetchedMail]:
        """Every message in the folder not flagged \\Deleted, oldest UID first.

        UIDs are listed once; bodies are fetched in batches, so `done` calls
        between yields (which expunge) never shift what is still to come.
        """
        uids = sorted(self._call(_search))
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            fetched, uidvalidity = self._call(partial(self._fetch, batch=batch))
            for uid in batch:
                raw = fetched.get(uid, {}).get(b"BODY[]")
                if raw is None:  # expunged meanwhile, by another worker
                    continue
                yield FetchedMail(key=f"{uidvalidity}:{uid}", raw=bytes(raw))

    def done(self, key: str) -> None:
        self._move(key, self.config.processed_folder)

    def quarantine(self, key: str, reason: str) -> None:
        log.warning("quarantining IMAP message %s: %s", key, reason)
        self._move(key, self.config.quarantine_folder)

    def purge_processed(self, before: dt.datetime, dry_run: bool = False) -> int:
        """Messages in the processed folder whose arrival (INTERNALDATE, which a
        MOVE keeps) is on a day before `before`'s: IMAP searches by whole days,
        so a copy may outlive its time by up to a day, never the other way.
        On its own connection: the source's stays on the folder it reads."""
        client = self._open(self.config.processed_folder)
        try:
            uids = client.search(["BEFORE", before.date(), "NOT", "DELETED"])
            if uids and not dry_run:
                client.add_flags(uids, [b"\\Deleted"], silent=True)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)
                else:  # the processed folder is ours alone: no one else's \Deleted
                    client.expunge()
            return len(uids)
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    # -- waiting ------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        """Block until the server reports new mail or `timeout` passes.

        Returns True when mail may have arrived. IDLE is only a hint: the
        caller searches again after every wait regardless. Without IDLE this
        is a plain sleep (the poll interval). Never raises for connection
        trouble; it backs off and lets the next call reconnect.
        """
        deadline = time.monotonic() + timeout
        try:
            client = self._connected()
            if not client.has_capability("IDLE"):
                self._pause(timeout)
                return True
            while (remaining := deadline - time.monotonic()) > 0:
                # Servers may drop an IDLE after 30 minutes (RFC 2177); renew early.
                if self._idle_once(client, min(remaining, self.config.idle_seconds)):
                    return True
            return False
        except CONNECTION_ERRORS as exc:
            self._drop(exc)
            self._pause(min(self._backoff(), deadline - time.monotonic()))
            return True

    def _idle_once(self, client: IMAPClient, seconds: float) -> bool:
        client.idle()
        try:
            responses = client.idle_check(timeout=seconds)
        finally:
            _, more = client.idle_done()
        return any(_is_new_mail(r) for r in [*responses, *more])

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except Exception:  # the connection is going away either way
                _shutdown(client)

    # -- internals ----------------------------------------------------------

    def _move(self, key: str, folder: str) -> None:
        uidvalidity, uid = (int(part) for part in key.split(":", 1))

        def move(client: IMAPClient) -> None:
            if uidvalidity != self._uidvalidity:
                # The folder was recreated; the message will be listed again
                # under its new key and recognised by its hash.
                return
            if client.has_capability("MOVE"):
                client.move([uid], folder)
                return
            client.copy([uid], folder)
            client.add_flags([uid], [b"\\Deleted"], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge([uid])  # never a bare EXPUNGE: other clients' flags

        def ensure_and_move(client: IMAPClient) -> None:
            self._ensure_folders(client)
            move(client)

        # The server may refuse, e.g. when someone deleted the folder: make the
        # folders again and retry once. If it still refuses, the message stays
        # put and the next pass, which finds it already stored, tries again;
        # one unmovable message must not stop the ones behind it.
        for attempt in (move, ensure_and_move):
            try:
                self._call(attempt)
                return
            except IMAPClientError as exc:
                if isinstance(exc, imaplib.IMAP4.abort):  # the connection, not a refusal
                    raise
                refusal = exc
        log.error("IMAP server refused to move %s to %s: %s", key, folder, refusal)

    def _fetch(self, client: IMAPClient, *, batch: list[int]) -> tuple[dict[int, Any], int]:
        uidvalidity = self._uidvalidity
        assert uidvalidity is not None
        return client.fetch(batch, ["BODY.PEEK[]"]), uidvalidity

    def _call(self, fn: Callable[[IMAPClient], _T]) -> _T:
        """Run `fn` on a live connection; after a connection error reconnect once."""
        for attempt in (1, 2):
            try:
                result = fn(self._connected())
            except CONNECTION_ERRORS as exc:
                self._drop(exc)
                if attempt == 2:
                    raise
                self._pause(self._backoff())
                continue
            self._failures = 0
            return result
        raise AssertionError("unreachable")

    def _connected(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> IMAPClient:
        return self._open(self.config.folder)

    def _open(self, folder: str) -> IMAPClient:
        """A new connection, logged in, with our folders made and `folder` selected."""
        cfg = self.config
        context = self._ssl_context() if cfg.security != "plain" else None
        client = IMAPClient(
            cfg.host,
            cfg.port,
            ssl=cfg.security == "tls",
            ssl_context=context,
            timeout=cfg.timeout_seconds,
        )
        try:
            if cfg.security == "starttls":
                client.starttls(context)
            client.login(cfg.username, self.password)
            self._ensure_folders(client)
            status = client.select_folder(folder)
        except BaseException:
            _shutdown(client)
            raise
        if folder == cfg.folder:
            self._uidvalidity = int(status[b"UIDVALIDITY"])
        return client

    def _ssl_context(self) -> ssl.SSLContext:
        # Loading the CA store takes ~0.1 s: once per source, not per reconnect.
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self.config.ca_file or None)
        return self._context

    def _ensure_folders(self, client: IMAPClient) -> None:
        for folder in (self.config.processed_folder, self.config.quarantine_folder):
            if not client.folder_exists(folder):
                try:
                    client.create_folder(folder)
                except IMAPClientError:
                    if not client.folder_exists(folder):  # another worker made it
                        raise

    def _drop(self, exc: BaseException) -> None:
        self._failures += 1
        log.warning("IMAP connection to %s lost: %s", self.config.host, exc)
        client, self._client = self._client, None
        if client is not None:
            _shutdown(client)

    def _pause(self, seconds: float) -> None:
        self._stop.wait(max(0.0, seconds))

    def _backoff(self) -> float:
        if self._failures <= 1:
            return 0.0
        return float(min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (self._failures - 2)))


def _search(client: IMAPClient) -> list[int]:
    # A selected mailbox's view changes only at a sync point: without the NOOP,
    # a long-lived connection does not see mail appended since its last one.
    client.noop()
    return list(client.search(["NOT", "DELETED"]))


def _is_new_mail(response: Any) -> bool:
    return (
        isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")
    )


def _shutdown(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # already gone
        client.shutdown()
