"""Which address a request came from, for sign-in throttling and the audit trail.

The socket's peer, unless that peer is one of `web.trusted_proxies`: then the
proxy's X-Forwarded-For says who it was talking to. Each proxy appends the
address it received the request from, so the list is read from the right and
the first address that is not a trusted proxy is the client. Anything left of
it was written by that client and could say anything, so it is never read; a
peer we do not trust gets its X-Forwarded-For ignored altogether.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from aiohttp import web

from kundo_gdpr.config import Config

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """The configured proxies as networks (config.py has already checked each)."""
    return tuple(ipaddress.ip_network(t) for t in trusted)


def address(request: web.Request, config: Config) -> str:
    """The client's address as this app can vouch for it."""
    return client(request.remote or "", request.headers.getall("X-Forwarded-For", []),
                  networks(config.web.trusted_proxies))


def client(peer: str, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The right-most address of the chain peer ← X-Forwarded-For that is not trusted.

    When every hop is trusted, the farthest one is the nearest to the client we know.
    An entry that is not an address ends the walk at the last hop we trusted: a
    proxy of ours wrote nonsense, and nothing left of it can be believed.
    """
    hop = _parse(peer)
    if hop is None or not _trusted(hop, trusted):
        return peer
    chain = [part.strip() for header in forwarded_for for part in header.split(",")]
    last = peer
    for entry in reversed([e for e in chain if e]):
        hop = _parse(entry)
        if hop is None:
            return last
        last = str(hop)
        if not _trusted(hop, trusted):
            return last
    return last


def _trusted(hop: Address, trusted: tuple[Network, ...]) -> bool:
    return any(hop.version == net.version and hop in net for net in trusted)


def _parse(entry: str) -> Address | None:
    """An address from a peer or an X-Forwarded-For entry; proxies may add a port
    ("192.0.2.1:4711", "[2001:db8::1]:4711")."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is that IPv4 client.
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found
