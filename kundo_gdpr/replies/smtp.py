"""SMTP delivery for the outbox, with STARTTLS/TLS and login from config.

An address that is not ASCII (RFC 6531) goes out with SMTPUTF8 when the server
offers it; a server that does not cannot deliver it, which is a permanent
failure with that reason. Whatever else goes wrong while sending is a
TransportError with its message: a failed attempt, never a crashed loop.
"""

from __future__ import annotations

import re
import smtplib
import ssl

from kundo_gdpr.config import SmtpConfig, is_loopback
from kundo_gdpr.replies.delivery import TransportError


class SmtpTransport:
    def __init__(self, config: SmtpConfig, password: str) -> None:
        if config.security == "plain" and not is_loopback(config.host):
            # Config validation refuses this too; a hand-built config must not slip by.
            raise ValueError(
                f"outbox.smtp.security = 'plain' is allowed only on loopback, not {config.host}"
            )
        self.config = config
        self.password = password
        self._context: ssl.SSLContext | None = None

    def send(self, sender: str, recipient: str, raw: bytes, message_id: str) -> None:
        try:
            smtp = self._connect()
            try:
                options = _mail_options(smtp, sender, recipient)
                smtp.sendmail(sender, [recipient], crlf(raw), mail_options=options)
            finally:
                _quit(smtp)
        except smtplib.SMTPAuthenticationError as exc:
            # Our password, not this reply: retry (the operator fixes the config).
            raise TransportError(
                f"SMTP login as {self.config.username!r} refused: {_reply(exc)}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise TransportError(_reply(exc), permanent=500 <= exc.smtp_code < 600) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = all(500 <= code < 600 for code in codes)
            raise TransportError(f"recipient refused: {exc.recipients}", permanent) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        except (UnicodeError, ValueError) as exc:  # an address or header smtplib cannot send
            raise TransportError(f"{type(exc).__name__}: {exc}", permanent=True) from exc

    def context(self) -> ssl.SSLContext:
        # Loading the CA store takes ~0.1 s: once per transport, not per reply.
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self.config.ca_file or None)
        return self._context

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=self.context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
        try:
            if cfg.security == "starttls":
                smtp.starttls(context=self.context())
            if cfg.username:
                smtp.login(cfg.username, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _mail_options(smtp: smtplib.SMTP, sender: str, recipient: str) -> list[str]:
    """SMTPUTF8 (with 8BITMIME) for a non-ASCII address, if the server offers it."""
    if sender.isascii() and recipient.isascii():
        return []
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("smtputf8"):
        raise TransportError(
            f"the SMTP server does not offer SMTPUTF8, so it cannot deliver to the "
            f"non-ASCII address {recipient!r}", permanent=True)
    return ["SMTPUTF8", *(["BODY=8BITMIME"] if smtp.has_extn("8bitmime") else [])]


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye, ignoring errors: once DATA is accepted the reply is delivered,
    and a failed QUIT must not turn that into a retry that sends it twice."""
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{exc.smtp_code} {shown}"


def crlf(raw: bytes) -> bytes:
    """SMTP lines end in CRLF. smtplib fixes line ends of str messages but sends
    bytes as they are, and servers refuse bare LF (RFC 5321 2.3.8; it is also
    the SMTP smuggling vector) or read the whole message as one long line."""
    return re.sub(rb"\r?\n", b"\r\n", raw)
