"""Where a webhook may be sent, as text: SSRF-safe URL checks shared by every service (pure).

A subscriber chooses the URL, and the notifier sits inside our network, so a URL is checked
twice: as text when it is given (`check_url`: https, a real public host name or address, no
credentials, no odd port, no numeric tricks; the map API at sign-up, the notifier before
every attempt), and by address every time it is used (the notifier's `webhook_target.pin`
resolves the name and judges every address with `address_problem`: not loopback, private,
link-local, CGNAT, multicast, reserved, cloud metadata, nor one of those inside an IPv6
form).

An explicit allow-list (tests, on-premise receivers) names exact `host:port` or `host:*`
entries; a URL on it may use http, any port and private addresses. Nothing else may.
Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "DEFAULT_PORTS",
    "MAX_URL_CHARS",
    "IPAddress",
    "Refused",
    "Target",
    "TargetPolicy",
    "address_problem",
    "check_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_CHARS = 2000
MAX_HOST_CHARS = 253
DEFAULT_PORTS = frozenset({443})
_DEFAULT_PORT = {"https": 443, "http": 80}

# Names that never mean a public receiver (RFC 6761/6762/7686/8375, ICANN's .internal, and
# the usual private suffixes): refused before any lookup, whatever they resolve to.
_SPECIAL_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "arpa",
    "onion",
    "test",
    "example",
    "invalid",
    "localdomain",
    "lan",
    "home",
    "corp",
)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_HEX_DIGITS = frozenset("0123456789abcdef")

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
"""Cloud instance metadata services (AWS, ECS, Alibaba, AWS IPv6): named for the log."""

_NETS: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = tuple(
    (name, tuple(ipaddress.ip_network(n) for n in nets))
    for name, nets in (
        ("unspecified", ("0.0.0.0/8", "::/128")),
        ("loopback", ("127.0.0.0/8", "::1/128")),
        ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
        ("shared_cgnat", ("100.64.0.0/10",)),
        ("link_local", ("169.254.0.0/16", "fe80::/10")),
        ("unique_local", ("fc00::/7",)),
        ("multicast", ("224.0.0.0/4", "ff00::/8")),
        (
            "documentation",
            ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"),
        ),
        ("benchmarking", ("198.18.0.0/15", "2001:2::/48")),
        # IETF protocol assignments, 6to4 relays, the old class E and broadcast; in IPv6,
        # Teredo and friends (2001::/23), 6to4 (2002::/16), site-local, local-use NAT64.
        (
            "reserved",
            (
                "192.0.0.0/24",
                "192.88.99.0/24",
                "240.0.0.0/4",
                "2001::/23",
                "2002::/16",
                "fec0::/10",
                "64:ff9b:1::/48",
            ),
        ),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")


@dataclass(frozen=True)
class Refused:
    """Why a target is refused: a short code (counted, shown to the owner), and whether it
    may pass later (a name that does not resolve right now)."""

    reason: str
    temporary: bool = False


@dataclass(frozen=True)
class TargetPolicy:
    """What may be called: the allow-list (`host:port`, `host:*`, `[v6]:port`) and the ports
    any public https receiver may use."""

    allow: tuple[str, ...] = ()
    ports: frozenset[int] = DEFAULT_PORTS

    def __post_init__(self) -> None:
        for entry in self.allow:
            _allow_entry(entry)  # a typo in settings fails at start-up, not per delivery

    def allows(self, host: str, port: int) -> bool:
        """Whether (host, port) is on the allow-list (exact host, exact port or '*')."""
        for entry in self.allow:
            allowed_host, allowed_port = _allow_entry(entry)
            if allowed_host == host and allowed_port in ("*", str(port)):
                return True
        return False


def _allow_entry(entry: str) -> tuple[str, str]:
    host, sep, port = entry.strip().lower().rpartition(":")
    if not sep or not host or not (port == "*" or (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"allow-list entries are host:port or host:*, not {entry!r}")
    return host.removeprefix("[").removesuffix("]").rstrip("."), port


@dataclass(frozen=True)
class Target:
    """A URL that passed the text checks: where to connect and what to ask for."""

    scheme: str
    host: str
    """ASCII, lower-case; an IPv6 address without brackets."""
    port: int
    path: str
    """The request target: path and query, never empty."""
    allowed: bool
    """On the allow-list: http, any port and private addresses are permitted."""
    address: IPAddress | None = None
    """The host itself, when it is an IP address (then no lookup is made)."""

    @property
    def url(self) -> str:
        """Normalized: lower-case scheme and host, no default port, no trailing dot."""
        return f"{self.scheme}://{self.host_header}{self.path}"

    @property
    def host_header(self) -> str:
        """The Host header (and, for a name, the TLS server name) the receiver expects."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORT[self.scheme] else f"{host}:{self.port}"


def address_problem(ip: IPAddress) -> str | None:
    """Why a resolved address must not be called, or None for a public unicast address.

    IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d) is judged as the IPv4
    address it reaches; the explicit ranges name the reason, and `is_global` (plus IPv6's
    global unicast 2000::/3) catches whatever a new reservation adds.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "link_local"  # a zone ('%eth0') only means something on our own links
        if ip.ipv4_mapped is not None:
            return address_problem(ip.ipv4_mapped)
        if ip in _NAT64:
            return address_problem(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _METADATA:
        return "metadata"
    for name, nets in _NETS:
        if any(ip in net for net in nets):
            return name
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return "reserved"
    if not ip.is_global:
        return "not_global"
    return None


def _looks_numeric(host: str) -> bool:
    """Whether a host is some numeric address form other resolvers accept ('2130706433',
    '0x7f.1', '127.1', '0177.0.0.1'): no top-level domain is all digits or hex-prefixed."""
    last = host.rsplit(".", 1)[-1]
    return last.isdigit() or (last.startswith("0x") and set(last[2:]) <= _HEX_DIGITS)


def _hostname_problem(host: str) -> str | None:
    if len(host) > MAX_HOST_CHARS:
        return "bad_hostname"
    for label in host.split("."):
        bad_chars = not set(label) <= _HOST_CHARS
        if not label or len(label) > 63 or bad_chars or label[0] == "-" or label[-1] == "-":
            return "bad_hostname"
    if "." not in host:
        return "single_label_host"  # 'intranet', 'metadata': completed by search domains
    if host.rsplit(".", 1)[-1] in _SPECIAL_SUFFIXES:
        return "special_use_name"
    return None


def _split(url: str) -> SplitResult | Refused:
    if len(url) > MAX_URL_CHARS:
        return Refused("too_long")
    if not url.isascii():
        # Look-alike and full-width tricks (full-width digits read as 127.0.0.1 to IDNA
        # 2003 decoders): a non-ASCII name is given in its xn-- form.
        return Refused("non_ascii")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in url):
        return Refused("bad_characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a malformed or out-of-range port
    except ValueError:
        return Refused("not_a_url")
    return parts


def check_url(url: str, policy: TargetPolicy) -> Target | Refused:
    """The text checks, before any lookup: a refusal names the first problem found."""
    parts = _split(url)
    if isinstance(parts, Refused):
        return parts
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT:
        return Refused("scheme")
    if "@" in parts.netloc:
        return Refused("credentials")  # 'https://city.gov@evil.example/' is evil.example
    if parts.fragment or url.endswith("#"):
        return Refused("fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return Refused("no_host")
    if "%" in host:
        return Refused("ip_zone")
    port = parts.port or _DEFAULT_PORT[scheme]
    allowed = policy.allows(host, port)
    if scheme == "http" and not allowed:
        return Refused("scheme")
    if port not in policy.ports and not allowed:
        return Refused("port_not_allowed")
    address: IPAddress | None = None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if ":" in host or _looks_numeric(host):
            return Refused("non_canonical_ip")
        problem = None if allowed else _hostname_problem(host)
        if problem:
            return Refused(problem)
    if address is not None and not allowed:
        problem = address_problem(address)
        if problem:
            return Refused(problem)
    path = parts.path or "/"
    request_target = f"{path}?{parts.query}" if parts.query else path
    return Target(scheme, host, port, request_target, allowed, address)
