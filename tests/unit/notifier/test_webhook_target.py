"""SSRF checks on webhook targets: URL forms, address ranges, resolving and pinning."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from connect311_notifier.webhook_target import (
    MAX_URL_CHARS,
    Pinned,
    Refused,
    Target,
    TargetPolicy,
    address_problem,
    check_url,
    pin,
    resolve,
    system_lookup,
)

PUBLIC = TargetPolicy()
LOOPBACK_ALLOWED = TargetPolicy(allow=("127.0.0.1:*", "hooks.intranet:8443"))


def answers(*addresses: str):  # type: ignore[no-untyped-def]
    """A resolver that answers with these addresses, and records what it was asked."""
    asked: list[tuple[str, int]] = []

    async def lookup(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(addresses)

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


async def never(host: str, port: int) -> list[str]:
    raise AssertionError("an address needs no lookup")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # Numeric forms other resolvers read as 127.0.0.1 (inet_aton): never a host name.
        ("https://2130706433/", "non_canonical_ip"),
        ("https://0x7f.1/", "non_canonical_ip"),
        ("https://0x7f000001/", "non_canonical_ip"),
        ("https://127.1/", "non_canonical_ip"),
        ("https://0177.0.0.1/", "non_canonical_ip"),
        ("https://017700000001/", "non_canonical_ip"),
        ("https://127.0.0.01/", "non_canonical_ip"),
        ("http://2130706433/", "scheme"),
        # Schemes: https only (http only when allow-listed).
        ("http://example.com/hook", "scheme"),
        ("ftp://example.com/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com:70/", "scheme"),
        ("example.com/hook", "scheme"),
        # Credentials, and the '@' that makes a URL read as another host.
        ("https://user:pw@example.com/", "credentials"),
        ("https://city.gov@evil.example.net/", "credentials"),
        ("https://@example.com/", "credentials"),
        # Characters: non-ASCII (IDN, full-width digits), whitespace, backslashes.
        ("https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "non_ascii"),  # full-width 127.0.0.1
        ("https://bücher.example.com/", "non_ascii"),
        ("https://example.com/ä", "non_ascii"),
        ("https://exa mple.com/", "bad_characters"),
        ("https://example.com/\r\nX-Injected: 1", "bad_characters"),
        ("https://evil.example.net\\@good.example.com/", "bad_characters"),
        ("https://example.com/a#frag", "fragment"),
        ("https://example.com:99999/", "not_a_url"),
        ("https://[::1/", "not_a_url"),
        ("https:///path", "no_host"),
        ("https://" + "a" * MAX_URL_CHARS + ".com/", "too_long"),
        # Ports: 443 only by default.
        ("https://example.com:8443/", "port_not_allowed"),
        ("https://example.com:22/", "port_not_allowed"),
        # Names that only mean something inside a network.
        ("https://localhost/", "single_label_host"),
        ("https://metadata/", "single_label_host"),
        ("https://intranet./", "single_label_host"),
        ("https://app.localhost/", "special_use_name"),
        ("https://printer.local/", "special_use_name"),
        ("https://metadata.google.internal/", "special_use_name"),
        ("https://router.home.arpa/", "special_use_name"),
        ("https://under_score.example.com/", "bad_hostname"),
        ("https://-dash.example.com/", "bad_hostname"),
        ("https://a..b.com/", "bad_hostname"),
        # Address literals in every forbidden range.
        ("https://127.0.0.1/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://10.1.2.3/", "private"),
        ("https://172.16.0.1/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://100.64.0.1/", "shared_cgnat"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("https://169.254.10.10/", "link_local"),
        ("https://[fe80::1]/", "link_local"),
        ("https://[fe80::1%25eth0]/", "ip_zone"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://0.1.2.3/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://[ff02::1]/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
        ("https://255.255.255.255/", "reserved"),
        ("https://[fc00::1]/", "unique_local"),
        ("https://[fd12:3456::1]/", "unique_local"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://[::ffff:169.254.169.254]/", "metadata"),
        ("https://[64:ff9b::a9fe:a9fe]/", "metadata"),
        ("https://[64:ff9b::7f00:1]/", "loopback"),
        ("https://[2002:7f00:1::]/", "reserved"),
        ("https://[2001:db8::1]/", "documentation"),
        ("https://192.0.2.10/", "documentation"),
        ("https://198.18.0.1/", "benchmarking"),
    ],
)
def test_refused(url: str, reason: str) -> None:
    assert check_url(url, PUBLIC) == Refused(reason)


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://hooks.example.com/311", "https://hooks.example.com/311"),
        ("HTTPS://Hooks.Example.COM./311?a=1&b=2", "https://hooks.example.com/311?a=1&b=2"),
        ("https://hooks.example.com:443", "https://hooks.example.com/"),
        ("https://xn--bcher-kva.example.com/", "https://xn--bcher-kva.example.com/"),
        ("https://0xdeadbeef.example.com/", "https://0xdeadbeef.example.com/"),
        ("https://8.8.8.8/hook", "https://8.8.8.8/hook"),
        ("https://[2606:4700:4700::1111]/hook", "https://[2606:4700:4700::1111]/hook"),
        ("https://[64:ff9b::808:808]/", "https://[64:ff9b::808:808]/"),
    ],
)
def test_accepted_and_normalized(url: str, normalized: str) -> None:
    target = check_url(url, PUBLIC)
    assert isinstance(target, Target), target
    assert target.url == normalized
    assert not target.allowed


def test_the_allow_list_opens_exact_host_and_port_only() -> None:
    target = check_url("http://127.0.0.1:8080/hook", LOOPBACK_ALLOWED)
    assert isinstance(target, Target)
    assert target.allowed and target.host_header == "127.0.0.1:8080"
    named = check_url("https://hooks.intranet:8443/x", LOOPBACK_ALLOWED)
    assert isinstance(named, Target) and named.allowed
    assert check_url("https://hooks.intranet:9443/x", LOOPBACK_ALLOWED) == Refused(
        "port_not_allowed"
    )
    assert check_url("http://127.0.0.2:8080/", LOOPBACK_ALLOWED) == Refused("scheme")
    assert check_url("https://127.0.0.2/", LOOPBACK_ALLOWED) == Refused("loopback")
    # The numeric tricks stay refused even for an allow-listed spelling of the address.
    tricky = TargetPolicy(allow=("2130706433:*",))
    assert check_url("http://2130706433/", tricky) == Refused("non_canonical_ip")


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:", "127.0.0.1:http", ":80", "h:0"])
def test_a_malformed_allow_list_entry_fails_at_start(entry: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        TargetPolicy(allow=(entry,))


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("64:ff9b::808:808", None),
        ("::ffff:8.8.8.8", None),
        ("127.255.255.254", "loopback"),
        ("172.31.255.255", "private"),
        ("100.127.255.255", "shared_cgnat"),
        ("169.254.170.2", "metadata"),
        ("100.100.100.200", "metadata"),
        ("192.0.0.8", "reserved"),
        ("::ffff:0:7f00:1", "reserved"),  # IPv4-translated (SIIT): not global unicast
        ("100::1", "reserved"),
        ("2001::1", "reserved"),  # Teredo
        ("fec0::1", "reserved"),
        ("3fff::1", "documentation"),
        ("fe80::1%eth0", "link_local"),
    ],
)
def test_address_problem(address: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


async def test_a_name_is_pinned_to_its_first_address_when_all_are_public() -> None:
    lookup = answers("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    pinned = await pin("https://hooks.example.com/311", PUBLIC, lookup)
    assert isinstance(pinned, Pinned)
    assert pinned.ip == "93.184.215.14"
    assert lookup.asked == [("hooks.example.com", 443)]


async def test_a_name_with_any_private_address_is_refused() -> None:
    # Picking the public one would leave the connection to whichever the next lookup gives.
    refused = await pin("https://hooks.example.com/", PUBLIC, answers("93.184.215.14", "10.0.0.7"))
    assert refused == Refused("private")
    mapped = await pin("https://hooks.example.com/", PUBLIC, answers("::ffff:127.0.0.1"))
    assert mapped == Refused("loopback")


async def test_dns_rebinding_is_refused_at_send_time() -> None:
    """Public when the subscriber gave it, pointing inside when the webhook is sent."""
    replies = iter([["93.184.215.14"], ["169.254.169.254"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(replies)

    first = await pin("https://hooks.example.com/", PUBLIC, rebinding)
    assert isinstance(first, Pinned)
    assert await pin("https://hooks.example.com/", PUBLIC, rebinding) == Refused("metadata")


async def test_an_address_literal_is_not_looked_up() -> None:
    pinned = await pin("https://8.8.8.8/hook", PUBLIC, never)
    assert isinstance(pinned, Pinned) and pinned.ip == "8.8.8.8"
    assert await pin("https://10.0.0.1/", PUBLIC, never) == Refused("private")


async def test_lookup_failures_are_temporary() -> None:
    async def missing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["93.184.215.14"]

    target = check_url("https://hooks.example.com/", PUBLIC)
    assert isinstance(target, Target)
    assert await resolve(target, missing) == Refused("dns_failed", temporary=True)
    assert await resolve(target, answers()) == Refused("dns_failed", temporary=True)
    assert await resolve(target, slow, timeout_s=0.05) == Refused("dns_timeout", temporary=True)
    assert await resolve(target, answers("not-an-ip")) == Refused("bad_address")


async def test_an_allow_listed_name_may_resolve_to_a_private_address() -> None:
    pinned = await pin("https://hooks.intranet:8443/x", LOOPBACK_ALLOWED, answers("10.1.2.3"))
    assert isinstance(pinned, Pinned) and pinned.ip == "10.1.2.3"


async def test_the_system_resolver_runs_off_the_loop_and_its_answers_are_checked() -> None:
    # localhost comes from the hosts file: no network needed, and it must be refused.
    policy = TargetPolicy(allow=("localhost:*",))
    assert await pin("https://localhost/", PUBLIC) == Refused("single_label_host")
    pinned = await pin("http://localhost:8080/", policy, system_lookup)
    assert isinstance(pinned, Pinned)
    assert address_problem(ipaddress.ip_address(pinned.ip)) == "loopback"
