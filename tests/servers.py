"""Real mail servers for tests: Dovecot (IMAP) and aiosmtpd (SMTP) on loopback.

Import the fixtures into a test module:
`from tests.servers import dovecot, smtp_server  # noqa: F401`.
A missing Dovecot skips the test, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import email
import email.policy
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from imapclient import IMAPClient

from tests.conftest import need_server

DOVECOT_CANDIDATES = ("dovecot", "/usr/sbin/dovecot")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(64):  # the greeting: the server is really up
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answers on 127.0.0.1:{port}")
        time.sleep(0.02)


# -- Dovecot ----------------------------------------------------------------

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = kundo-test-{port}
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_location = maildir:{base}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={base}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {internal_user}
}}
"""


@dataclass
class Dovecot:
    """One Dovecot instance. Its port survives `restart`."""

    binary: str
    base: Path
    port: int
    user: str = "kundo"
    password: str = "imap-secret"
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        me = pwd.getpwuid(os.getuid())
        if os.getuid() == 0:
            # Dovecot refuses mail and login processes running as root.
            mail = pwd.getpwnam("nobody")
            login = _first_user("dovenull", "nobody")
            internal_user, internal_group = "root", "root"
        else:
            mail = login = me
            internal_user = me.pw_name
            internal_group = _group_name(me.pw_gid)
        (self.base / "mail").mkdir(parents=True, exist_ok=True)
        os.chown(self.base / "mail", mail.pw_uid, mail.pw_gid)
        (self.base / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::\n")
        conf = self.base / "dovecot.conf"
        conf.write_text(
            DOVECOT_CONF.format(
                base=self.base,
                port=self.port,
                internal_user=internal_user,
                internal_group=internal_group,
                login_user=login,
                mail_uid=mail.pw_uid,
                mail_gid=mail.pw_gid,
            )
        )
        return conf

    def start(self) -> None:
        conf = self.base / "dovecot.conf"
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"Dovecot did not start:\n{self.log()}") from None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> IMAPClient:
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)

    def messages(self, folder: str) -> list[bytes]:
        """The raw messages in a folder that are not flagged \\Deleted."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search(["NOT", "DELETED"])
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [bytes(fetched[uid][b"BODY[]"]) for uid in sorted(fetched)]


def _first_user(*names: str) -> str:
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError(f"none of the users {names} exists")


def _group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def dovecot_binary() -> str | None:
    for candidate in DOVECOT_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A fresh Dovecot with one user and an empty INBOX."""
    binary = dovecot_binary()
    if binary is None:
        need_server("Dovecot (apt-get install dovecot-imapd)")
        raise AssertionError("unreachable")
    # Not under pytest's tmp_path: that is private to us, and when we are
    # root the mail processes run as `nobody`, who must reach the maildir.
    base = Path(tempfile.mkdtemp(prefix="kundo-dovecot-"))
    base.chmod(0o755)
    server = Dovecot(binary=binary, base=base, port=free_port())
    server.write_config()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- SMTP -------------------------------------------------------------------


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SmtpServer:
    """aiosmtpd on a fixed loopback port; `stop`/`start` simulate an outage,
    `reject_with` makes it answer DATA with that reply (e.g. a 5xx)."""

    port: int
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    reject_with: str | None = None
    controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reject_with:
            return self.reject_with
        content = envelope.original_content or b""
        self.received.append(
            Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], content)
        )
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller = Controller(self, hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        controller, self.controller = self.controller, None
        if controller is not None:
            controller.stop()

    def messages(self) -> list[EmailMessage]:
        return [r.message() for r in self.received]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
