"""Where a webhook may be sent: the URL's text checks, and the one address to connect to.

The text checks (`check_url`, `address_problem`, the allow-list) live in the contracts
package (`connect311_contracts.webhook_url`), so the map API refuses at sign-up what the
notifier refuses here; they are re-exported for the notifier's code. Here, by address,
every time a URL is used (`pin`): the name is resolved, every address it has must be public,
and the sender connects to that very address. Resolving again at send time defeats DNS
rebinding (a name that was public when checked and points inside later); connecting to the
checked address, not the name, defeats a second answer between the check and the connect.
`pin`/`resolve` await the resolver (getaddrinfo in a thread, never on the event loop).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connect311_contracts.webhook_url import (
    DEFAULT_PORTS,
    MAX_URL_CHARS,
    IPAddress,
    Refused,
    Target,
    TargetPolicy,
    address_problem,
    check_url,
)

__all__ = [
    "DEFAULT_PORTS",
    "MAX_URL_CHARS",
    "Lookup",
    "Pinned",
    "Refused",
    "Target",
    "TargetPolicy",
    "address_problem",
    "check_url",
    "pin",
    "resolve",
    "system_lookup",
]

DNS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Pinned:
    """A target and the checked address to connect to (the name is not looked up again)."""

    target: Target
    ip: str


Lookup = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name (and port) to its addresses, as strings."""


async def system_lookup(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (in a thread: never blocks the loop)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


async def resolve(
    target: Target, lookup: Lookup = system_lookup, timeout_s: float = DNS_TIMEOUT_S
) -> Pinned | Refused:
    """The address to connect to: every address of the name must pass, the first is used.

    Refusing when any address is private (not only the one picked) leaves nothing to a
    name that answers both. A lookup that fails or times out is temporary.
    """
    if target.address is not None:
        return Pinned(target, str(target.address))
    try:
        async with asyncio.timeout(timeout_s):
            found = list(dict.fromkeys(await lookup(target.host, target.port)))
    except TimeoutError:
        return Refused("dns_timeout", temporary=True)
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        return Refused("dns_failed", temporary=True)
    addresses: list[IPAddress] = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            return Refused("bad_address")
    if not addresses:
        return Refused("dns_failed", temporary=True)
    if not target.allowed:
        for ip in addresses:
            problem = address_problem(ip)
            if problem:
                return Refused(problem)
    return Pinned(target, str(addresses[0]))


async def pin(
    url: str,
    policy: TargetPolicy,
    lookup: Lookup = system_lookup,
    timeout_s: float = DNS_TIMEOUT_S,
) -> Pinned | Refused:
    """Both checks, as the sender runs them before every attempt (against DNS rebinding)."""
    target = check_url(url, policy)
    if isinstance(target, Refused):
        return target
    return await resolve(target, lookup, timeout_s)
