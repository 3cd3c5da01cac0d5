"""Real mail servers for tests: Dovecot (IMAP) and aiosmtpd (SMTP) on loopback.

Import the fixtures into a test module:
`from tests.servers import dovecot, smtp_server  # noqa: F401`.
A missing Dovecot skips the test, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import grp
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from imapclient import IMAPClient

from tests.conftest import need_server

DOVECOT_CANDIDATES = ("dovecot", "/usr/sbin/dovecot")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, seconds: float = 5.0, tls: bool = False) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if tls:  # the port is up once it answers a handshake
                    ssl._create_unverified_context().wrap_socket(sock).close()
                    return
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
{ssl}
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
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
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
    # With a certificate: STARTTLS on `port`, implicit TLS on `imaps_port`.
    cert: Certificate | None = None
    imaps_port: int = 0
    # Appended to dovecot.conf, e.g. an `imap_capability` line to hide MOVE or IDLE.
    extra_config: str = ""

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
                ssl=self._ssl_settings(),
                imaps_port=self.imaps_port,
            )
            + self.extra_config
        )
        return conf

    def _ssl_settings(self) -> str:
        if self.cert is None:
            return "ssl = no"
        return f"ssl = yes\nssl_cert = <{self.cert.cert_file}\nssl_key = <{self.cert.key_file}"

    def start(self) -> None:
        conf = self.base / "dovecot.conf"
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: see `stop`
        )
        try:
            wait_for_port(self.port)
            if self.imaps_port:
                wait_for_port(self.imaps_port, tls=True)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"Dovecot did not start:\n{self.log()}") from None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        # The whole process group at once, as a crash would: a graceful stop
        # takes a second (per test), and Dovecot's master leaves its imap
        # processes serving open connections after it exits, so a "restart"
        # would not even drop a client's connection.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
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
    yield from _dovecot(None)


@pytest.fixture
def dovecot_tls(certificate: Certificate) -> Iterator[Dovecot]:
    """Dovecot with `certificate`: STARTTLS on `port`, TLS on `imaps_port`."""
    yield from _dovecot(certificate)


@pytest.fixture(params=["UIDPLUS", "no UIDPLUS"])
def dovecot_without_move_or_idle(request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    """A Dovecot that advertises neither MOVE nor IDLE (and, in one variant, no
    UIDPLUS), like many older servers: the fallbacks get exercised."""
    capabilities = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE"
    if request.param == "UIDPLUS":
        capabilities += " UIDPLUS"
    yield from _dovecot(None, f"imap_capability = {capabilities}\n")


def _dovecot(cert: Certificate | None, extra_config: str = "") -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        need_server("Dovecot (apt-get install dovecot-imapd)")
        raise AssertionError("unreachable")
    # Not under pytest's tmp_path: that is private to us, and when we are
    # root the mail processes run as `nobody`, who must reach the maildir.
    base = Path(tempfile.mkdtemp(prefix="kundo-dovecot-"))
    base.chmod(0o755)
    server = Dovecot(
        binary=binary,
        base=base,
        port=free_port(),
        cert=cert,
        imaps_port=free_port() if cert else 0,
        extra_config=extra_config,
    )
    server.write_config()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- TLS --------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for localhost and 127.0.0.1, made for one test."""

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificate(folder: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@pytest.fixture
def certificate() -> Iterator[Certificate]:
    # Readable by Dovecot's config process, which is not us when we are not root.
    folder = Path(tempfile.mkdtemp(prefix="kundo-cert-"))
    try:
        yield make_certificate(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    `reject_with` makes it answer DATA with that reply (e.g. a 5xx).

    With `cert`, it offers STARTTLS (and requires it), or speaks TLS from the
    first byte when `implicit_tls`. With `users`, it requires AUTH (only over
    TLS) and records each login in `logins`."""

    port: int
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    reject_with: str | None = None
    controller: Controller | None = None
    cert: Certificate | None = None
    implicit_tls: bool = False
    users: dict[str, str] = field(default_factory=dict)
    mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN")
    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    # Whether EHLO offers SMTPUTF8 (RFC 6531: non-ASCII addresses).
    smtputf8: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reject_with:
            return self.reject_with
        content = envelope.original_content or b""
        self.received.append(
            Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], content)
        )
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = data.login.decode()
        ok = self.users.get(login) == data.password.decode()
        self.logins.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.cert is not None and self.implicit_tls:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here every byte is TLS.
            kwargs.update(ssl_context=self.cert.server_context(), auth_require_tls=False)
        elif self.cert is not None:
            kwargs.update(tls_context=self.cert.server_context(), require_starttls=True)
        if self.users:
            kwargs.update(
                authenticator=self.authenticate,
                auth_required=True,
                auth_exclude_mechanism=[m for m in ("LOGIN", "PLAIN") if m not in self.mechanisms],
            )
        self.controller = Controller(self, hostname=self.host, port=self.port,
                                     enable_SMTPUTF8=self.smtputf8, **kwargs)
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
