"""Who really sent a mail: DKIM aligned with From, or a trusted receiver's verdict.

The From header is whatever the sender typed. A mail counts as authenticated
only when a DKIM signature made with a key of at least 1024 bits, covering
From and the whole body, verifies for a domain aligned with the From domain,
or when a receiving server we trust (by authserv-id) says DMARC or aligned
DKIM passed. Every DNS lookup goes through `lookup_txt`.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import authres
import dkim
import dkim.dnsplug
from dkim.util import InvalidTagValueList, parse_tag_value

from kundo_gdpr.config import Config

log = logging.getLogger(__name__)

MIN_KEY_BITS = 1024

DnsFunc = Callable[..., bytes | None]


@dataclass(frozen=True)
class AuthResult:
    authenticated: bool
    # How: "dkim:<domain>" or "authres:<authserv-id>", or why not.
    method: str
    reasons: tuple[str, ...] = ()


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment: equal, or one is a subdomain of the other."""
    a, b = signing_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not a or not b:
        return False
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def load_pinned(path: Path | None) -> dict[str, bytes]:
    """`selector._domainkey.domain TXT-record` lines → {name: record}."""
    if path is None:
        return {}
    pinned: dict[str, bytes] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, record = line.partition(" ")
        pinned[name.lower().rstrip(".")] = record.strip().strip('"').encode()
    return pinned


def make_dnsfunc(pinned: dict[str, bytes]) -> DnsFunc:
    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        return lookup_txt(name, pinned, timeout)

    return dnsfunc


def lookup_txt(name: bytes | str, pinned: dict[str, bytes], timeout: float = 5) -> bytes | None:
    """The one place DNS is asked: pinned records first, then the resolver."""
    key = (name.decode() if isinstance(name, bytes) else name).lower().rstrip(".")
    if key in pinned:
        return pinned[key]
    return dkim.dnsplug.get_txt(name if isinstance(name, bytes) else name.encode(), timeout)  # type: ignore[no-any-return]


def authenticate(raw: bytes, from_domain: str, config: Config) -> AuthResult:
    """Whether the mail provably comes from `from_domain`."""
    pinned_path = config.path(config.auth.pinned_keys) if config.auth.pinned_keys else None
    dnsfunc = make_dnsfunc(load_pinned(pinned_path))
    reasons: list[str] = []
    signer = _dkim_pass(raw, from_domain, dnsfunc, reasons)
    if signer:
        return AuthResult(True, f"dkim:{signer}", tuple(reasons))
    authserv = _trusted_authres(raw, from_domain, config.auth.trusted_authserv_ids, reasons)
    if authserv:
        return AuthResult(True, f"authres:{authserv}", tuple(reasons))
    return AuthResult(False, "none", tuple(reasons) or ("no_signature",))


def _dkim_pass(raw: bytes, from_domain: str, dnsfunc: DnsFunc, reasons: list[str]) -> str | None:
    """The aligned signing domain of the first acceptable valid signature."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    verifier = dkim.DKIM(raw, minkey=MIN_KEY_BITS)
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    for idx in range(count):
        reason = _acceptable(verifier, idx, from_domain)
        if reason:
            reasons.append(reason)
            continue
        try:
            ok = dkim.DKIM(raw, minkey=MIN_KEY_BITS).verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as exc:
            reasons.append(f"dkim_error: {exc}")
            continue
        except Exception as exc:  # DNS failures arrive as resolver-specific errors
            reasons.append(f"dkim_error: {type(exc).__name__}: {exc}")
            continue
        if ok:
            return verifier_domain(verifier, idx)
        reasons.append("dkim_fail")
    return None


def verifier_domain(verifier: dkim.DKIM, idx: int) -> str:
    return _sig_tags(verifier, idx)[b"d"].decode("ascii", "replace").lower()


def _sig_tags(verifier: dkim.DKIM, idx: int) -> dict[bytes, bytes]:
    sigs = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    return parse_tag_value(sigs[idx])  # type: ignore[no-any-return]


def _acceptable(verifier: dkim.DKIM, idx: int, from_domain: str) -> str | None:
    """Why this signature cannot count, before any cryptography."""
    try:
        tags = _sig_tags(verifier, idx)
    except InvalidTagValueList:
        return "dkim_malformed"
    if b"l" in tags:
        return "dkim_body_length"
    signed = {h.strip().lower() for h in re.split(rb":", tags.get(b"h", b""))}
    if b"from" not in signed:
        return "dkim_from_unsigned"
    domain = tags.get(b"d", b"").decode("ascii", "replace")
    if not aligned(domain, from_domain):
        return f"dkim_unaligned: {domain}"
    return None


# -- Authentication-Results (RFC 8601) -----------------------------------------


def _trusted_authres(
    raw: bytes, from_domain: str, trusted: tuple[str, ...], reasons: list[str]
) -> str | None:
    """The trusted authserv-id whose verdict says From's domain passed, if any.

    RFC 8601 section 5: only the headers our own receiver added count, and
    it adds them on top. So headers are read from the top down, and the
    reading stops at the first `Received:` line (anything below it came with
    the mail from outside) and at the first header from another authserv-id
    (a sender can write any header it likes, our id included, below it).
    """
    if not trusted:
        return None
    wanted = {t.lower() for t in trusted}
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    topmost = True
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "received":
            topmost = False
        if lowered != "authentication-results":
            continue
        parsed = _parse_authres(str(value))
        authserv = str(parsed.authserv_id).lower() if parsed is not None else ""
        if not topmost:
            if authserv in wanted:  # a forgery, or a copy from an earlier hop: said, not used
                reasons.append(f"authres_not_topmost: {authserv}")
            continue
        if parsed is None:
            reasons.append("authres_malformed")
            topmost = False
        elif authserv not in wanted:
            reasons.append(f"authres_untrusted: {authserv}")
            topmost = False
        elif _says_pass(parsed, from_domain):
            return authserv
        else:
            reasons.append(f"authres_no_pass: {authserv}")
    return None


def _parse_authres(value: str) -> authres.AuthenticationResultsHeader | None:
    """The header parsed by `authres`, or None when it cannot be read."""
    try:
        return authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
    except Exception:  # authres raises its own SyntaxError and others on junk
        return None


def _says_pass(header: authres.AuthenticationResultsHeader, from_domain: str) -> bool:
    for result in header.results:
        if str(result.result).lower() != "pass":
            continue
        props = {f"{p.type}.{p.name}".lower(): str(p.value).lower() for p in result.properties}
        method = str(result.method).lower()
        if method == "dmarc":
            if props.get("header.from", from_domain.lower()) == from_domain.lower():
                return True
        elif method == "dkim":
            signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if signer and aligned(signer, from_domain):
                return True
    return False
