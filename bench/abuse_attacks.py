"""bench/abuse.py's attacks: raw HTTP (what a well-behaved client library will not send) and
each bounded attack, run from the attacker's address in the attacker's process."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx

HOST = "127.0.0.1"
ATTACKER = "127.0.0.3"
NORMAL_TIMEOUT_S = 30.0  # a normal call that waits longer counts as failed, at this latency

# Attack sizes (issue 12's probe, bounded).
LONG_URL_BYTES = 60_000
LONG_URL_CLIENTS = 4
HEADER_BYTES = 1_000_000
HEADER_CLIENTS = 2
SLOW_CONNECTIONS = 64
TRICKLE_S = 1.0  # one header line / a few body bytes per connection per second
STREAMS = 200
HEAVY_CLIENTS = 4
BAD_CLIENTS = 4
# Each attacking client sends at most this many requests per second (--attack-rate): four
# clients send as many as the normal client. A flood of anything at full speed measures the
# machine's two cores, not the weakness; what an attack must not do is cost the server more
# than the answer is worth.
CLIENT_RATE = 5.0
SIGNUP_VARIANTS = 30

WORLD = "-180,-90,180,90"
FALLBACK_MAX_LIMIT = 5000  # /api/requests `limit`, when the OpenAPI document does not say
FALLBACK_MAX_PAGE_SIZE = 1000  # Open311 `page_size`, likewise


@dataclass(frozen=True)
class Server:
    """Where the map API listens and the page-size maxima it advertises."""

    port: int
    max_limit: int = FALLBACK_MAX_LIMIT
    max_page_size: int = FALLBACK_MAX_PAGE_SIZE
    client_rate: float = CLIENT_RATE  # requests per second per attacking client (0: no pause)

    @property
    def base(self) -> str:
        """The base URL."""
        return f"http://{HOST}:{self.port}"


Attack = Callable[[Server, float, Counter[str]], Coroutine[Any, Any, None]]


async def _connect(
    server: Server, source: str = ATTACKER
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, server.port, local_addr=(source, 0))


async def _status(reader: asyncio.StreamReader) -> str:
    """The status code of the answer, or what the server did instead."""
    try:
        line = await reader.readline()
    except (ConnectionError, ValueError):  # ValueError: an over-long line
        return "reset"
    if not line:
        return "closed"
    parts = line.split()
    return parts[1].decode() if len(parts) > 1 and parts[0].startswith(b"HTTP/") else "garbled"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def exchange(server: Server, payload: bytes, stop_at: float, source: str = ATTACKER) -> str:
    """Send one raw request on a new connection; its status, or what happened by `stop_at`."""
    try:
        async with asyncio.timeout(max(0.0, stop_at - time.monotonic())):
            reader, writer = await _connect(server, source)
            try:
                try:
                    writer.write(payload)
                    await writer.drain()
                except ConnectionError:
                    pass  # answered and closed before reading it all: the status may be there
                return await _status(reader)
            finally:
                await _close(writer)
    except TimeoutError:
        return "no answer by phase end"
    except OSError:
        return "connect failed"


def request_bytes(
    method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    """A raw HTTP/1.1 request that closes its connection after the answer."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def paced(stop_at: float, per_second: float) -> AsyncIterator[int]:
    """0, 1, 2, ... at most `per_second` a second (0: as fast as asked) until `stop_at`."""
    n, next_at = 0, time.monotonic()
    while next_at < stop_at:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))  # pacing, not waiting
        yield n
        n += 1
        gap = 1 / per_second if per_second > 0 else 0.0
        next_at = max(next_at + gap, time.monotonic())


async def _repeat(
    server: Server, payload: bytes, stop_at: float, answers: Counter[str], clients: int
) -> None:
    async def one_client() -> None:
        async for _ in paced(stop_at, server.client_rate):
            answers[await exchange(server, payload, stop_at)] += 1

    await asyncio.gather(*(one_client() for _ in range(clients)))


async def long_url(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """A 60 KB URL on /healthz from 4 clients, each waiting for its answer."""
    target = "/healthz?q=" + "a" * LONG_URL_BYTES
    await _repeat(server, request_bytes("GET", target), stop_at, answers, LONG_URL_CLIENTS)


async def big_headers(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """1 MB of headers (1,000 of 1 KB) on /healthz from 2 clients, each waiting for its answer."""
    count = HEADER_BYTES // 1000
    headers = {f"X-Pad-{i}": "b" * (1000 - len(f"X-Pad-{i}: \r\n")) for i in range(count)}
    payload = request_bytes("GET", "/healthz", headers)
    await _repeat(server, payload, stop_at, answers, HEADER_CLIENTS)


async def _trickle(
    server: Server, stop_at: float, answers: Counter[str], head: bytes, drip: bytes
) -> None:
    """Send `head`, then `drip` every TRICKLE_S until the server answers or the phase ends."""
    try:
        reader, writer = await _connect(server)
    except OSError:
        answers["connect failed"] += 1
        return
    opened = time.monotonic()
    try:
        writer.write(head)
        while True:
            left = stop_at - time.monotonic()
            if left <= 0:
                answers[f"held open {stop_at - opened:.0f} s, to phase end"] += 1
                return
            try:
                await writer.drain()
                status = await asyncio.wait_for(_status(reader), min(TRICKLE_S, left))
            except TimeoutError:
                writer.write(drip)
                continue
            except ConnectionError:
                status = "reset"
            shown = status if status not in ("closed", "reset") else f"{status} by server"
            answers[f"{shown} after {time.monotonic() - opened:.0f} s"] += 1
            return
    finally:
        await _close(writer)


async def slow_headers(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """64 connections sending one more header line per second, never finishing (slowloris)."""
    head = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n".encode()
    await asyncio.gather(
        *(
            _trickle(server, stop_at, answers, head, f"X-Slow-{i}: 1\r\n".encode())
            for i in range(SLOW_CONNECTIONS)
        )
    )


async def slow_body(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """64 sign-up POSTs announcing 60 KB of body and sending 8 bytes per second."""
    head = (
        f"POST /api/subscriptions HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        'Content-Length: 60000\r\n\r\n{"email":'
    ).encode()
    await asyncio.gather(
        *(_trickle(server, stop_at, answers, head, b"        ") for _ in range(SLOW_CONNECTIONS))
    )


async def live_streams(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """200 live-stream (SSE) connections from one client, held open for the phase."""

    async def one() -> None:
        try:
            reader, writer = await _connect(server)
        except OSError:
            answers["connect failed"] += 1
            return
        streaming = False
        try:
            writer.write(request_bytes("GET", "/api/stream", {"Accept": "text/event-stream"}))
            async with asyncio.timeout(max(0.0, stop_at - time.monotonic())):
                status = await _status(reader)
                if status != "200":
                    answers[status] += 1
                    return
                streaming = True
                while await reader.read(65536):  # pings and events, read and dropped
                    pass
                answers["200, then closed by server"] += 1
        except TimeoutError:
            answers["200, held to phase end" if streaming else "no answer by phase end"] += 1
        except ConnectionError:
            answers["reset"] += 1
        finally:
            await _close(writer)

    await asyncio.gather(*(one() for _ in range(STREAMS)))


async def heavy_reads(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """4 clients alternating whole-world GeoJSON and Open311 XML, both at the maximum page."""
    calls: list[tuple[str, dict[str, str | int]]] = [
        ("/api/requests", {"bbox": WORLD, "limit": server.max_limit}),
        ("/open311/v2/requests.xml", {"page_size": server.max_page_size}),
    ]
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER)
    limits = httpx.Limits(max_connections=HEAVY_CLIENTS)

    async def one_client(http: httpx.AsyncClient, offset: int) -> None:
        async for n in paced(stop_at, server.client_rate):
            path, params = calls[(n + offset) % len(calls)]
            try:
                async with http.stream("GET", path, params=params) as response:
                    async for _ in response.aiter_raw():  # read, never parsed: cheap here
                        pass
                answers[str(response.status_code)] += 1
            except httpx.HTTPError as exc:
                answers[type(exc).__name__] += 1

    async with httpx.AsyncClient(
        base_url=server.base, transport=transport, limits=limits, timeout=NORMAL_TIMEOUT_S
    ) as http:
        try:
            async with asyncio.timeout(max(0.0, stop_at - time.monotonic()) + 1.0):
                await asyncio.gather(*(one_client(http, i) for i in range(HEAVY_CLIENTS)))
        except TimeoutError:
            answers["no answer by phase end"] += 1


SIGNUP_TARGET = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}


def mailbox_variants(count: int) -> list[str]:
    """Spellings of one Gmail mailbox: `+tags`, dots and case, which Gmail all delivers there."""
    out = []
    for n in range(count):
        local = ["victim", "vic.tim", "v.i.c.t.i.m", "VICTIM"][n % 4]
        out.append(f"{local}+{n}@gmail.com")
    return out


async def signup_flood(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """30 sign-ups for spellings of one mailbox, one at a time, each from its own address."""
    emails = mailbox_variants(SIGNUP_VARIANTS)
    async for n in paced(stop_at, 4 * server.client_rate):  # as fast as 4 attacking clients
        if n >= len(emails):
            break
        email = emails[n]
        body = json.dumps({"email": email, "target": SIGNUP_TARGET}).encode()
        source = f"127.0.1.{n + 1}"  # many sources, as a botnet: the per-IP limit is not the test
        status = await exchange(
            server, request_bytes("POST", "/api/subscriptions", body=body), stop_at, source
        )
        answers[{"202": "202 (confirmation sent)", "429": "429 (refused)"}.get(status, status)] += 1


def bad_bodies() -> list[tuple[str, str, bytes]]:
    """(kind, path, raw JSON) with non-finite numbers or deep nesting, under the body limit."""
    email = '"email": "someone@example.org"'
    circle = '{{"kind": "circle", "lat": {lat}, "long": -82.64, "radius_m": {radius}}}'
    corridor = '{"kind": "corridor", "coordinates": [[-82.64, 27.77], [-82.63, 27.78]], '
    return [
        ("NaN radius", "/api/subscriptions",
         f"{{{email}, \"target\": {circle.format(lat=27.77, radius='NaN')}}}".encode()),
        ("Infinity lat", "/api/subscriptions",
         f"{{{email}, \"target\": {circle.format(lat='Infinity', radius=500)}}}".encode()),
        ("-Infinity width", "/api/subscriptions",
         f"{{{email}, \"target\": {corridor}\"width_m\": -Infinity}}}}".encode()),
        ("NaN preview", "/api/subscriptions/preview",
         f"{{\"target\": {circle.format(lat=27.77, radius='NaN')}}}".encode()),
        ("deep array", "/api/subscriptions",
         f"{{{email}, \"target\": {'[' * 20_000}{']' * 20_000}}}".encode()),
        ("deep object", "/api/subscriptions", ('{"a": ' * 8_000 + "1" + "}" * 8_000).encode()),
    ]  # fmt: skip


async def bad_numbers(server: Server, stop_at: float, answers: Counter[str]) -> None:
    """NaN/Infinity coordinates, radius and width, and deeply nested bodies, from 4 clients."""
    bodies = [(kind, request_bytes("POST", path, body=body)) for kind, path, body in bad_bodies()]

    async def one_client(offset: int) -> None:
        async for n in paced(stop_at, server.client_rate):
            kind, payload = bodies[(n + offset) % len(bodies)]
            answers[f"{kind}: {await exchange(server, payload, stop_at)}"] += 1

    await asyncio.gather(*(one_client(i) for i in range(BAD_CLIENTS)))


ATTACKS: dict[str, Attack] = {
    "long-url": long_url,
    "big-headers": big_headers,
    "slow-headers": slow_headers,
    "slow-body": slow_body,
    "live-streams": live_streams,
    "heavy-reads": heavy_reads,
    "signup-flood": signup_flood,
    "bad-numbers": bad_numbers,
}


NEEDS_BROKER = {"signup-flood"}


SLOW = ("slow-headers", "slow-body")  # a server read timeout shows only in a phase longer than it
