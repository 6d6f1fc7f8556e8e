"""Hostile requests beside a normal client: does any attack push its p95 past 2x? (issue 12)

    uv run python bench/abuse.py                                  # every attack, 10 s phases
    uv run python bench/abuse.py --quick --attacks long-url,bad-numbers
    uv run python bench/abuse.py --src /tmp/abuse-before          # another checkout's code

Seeds a fresh SQLite database with synthetic requests (bench/map_api.py's city), starts a
local broker (sign-up needs one; --no-broker skips it and the sign-up flood) and the map API
as production runs it (`connect311-map-api run`: info logging through the redacting handler,
access lines included) in its own process on a free loopback port. A normal client on
127.0.0.2, paced at --rate calls per second, cycles through a street-scale map query,
/healthz and the map page. The first phase is that client alone (the baseline); then one
phase per attack, the attack running from 127.0.0.3 (the sign-up flood from many loopback
addresses, as a botnet would) in its own process, so the attacker's own work does not stall
the normal client or count as server latency. Every attack is bounded in connections, requests
and time (each attacking client sends at most --attack-rate requests a second), and talks to
loopback only. A last baseline phase shows how noisy the run was; the quieter of the two
baselines is the reference.

Prints, per attack: the normal client's p50/p95, its p95 over the reference, the normal
client's failed calls, what the server answered the attack, and pass/fail against 2x (and no
failed normal call); then a verdict line and the count of 5xx answers to the attacks. Exits 0
whatever the figures: this measures, the hardening tests judge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from machine_info import machine

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
NORMAL_SOURCE = "127.0.0.2"  # another address than the attacker: per-client limits apply
ATTACKER = "127.0.0.3"
NORMAL_TIMEOUT_S = 30.0  # a normal call that waits longer counts as failed, at this latency
RATIO_LIMIT = 2.0  # the aim of issue 12: no attack pushes the normal p95 past 2x

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


@dataclass
class Normal:
    """What the normal client saw in one phase."""

    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def pct(self, q: float) -> float:
        """The q-quantile (nearest rank) in milliseconds."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


Attack = Callable[[Server, float, Counter[str]], Coroutine[Any, Any, None]]


# --- raw HTTP: the attacks need what a well-behaved client library will not do ----------------


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


# --- the attacks ------------------------------------------------------------------------------


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


# --- the normal client ------------------------------------------------------------------------


def street_views(seed: int) -> Iterator[str]:
    """Random 0.02-degree bbox parameters (street scale) inside the seeded city."""
    from map_api import CITY  # bench/map_api.py; imported once the served code is on the path

    rnd, span = random.Random(seed), 0.02
    while True:
        lon = rnd.uniform(CITY.min_long, CITY.max_long - span)
        lat = rnd.uniform(CITY.min_lat, CITY.max_lat - span)
        yield f"{lon:.5f},{lat:.5f},{lon + span:.5f},{lat + span:.5f}"


async def normal_client(server: Server, stop_at: float, rate: float) -> Normal:
    """Paced typical calls until `stop_at`: the map's street query, /healthz, the map page."""
    views = street_views(1)
    seen = Normal()
    transport = httpx.AsyncHTTPTransport(local_address=NORMAL_SOURCE)
    async with httpx.AsyncClient(
        base_url=server.base, transport=transport, timeout=NORMAL_TIMEOUT_S
    ) as http:
        n = 0
        next_at = time.monotonic()
        while next_at < stop_at:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))  # pacing, not waiting
            calls: list[tuple[str, dict[str, str | int]]] = [
                ("/api/requests", {"bbox": next(views), "limit": 500}),
                ("/healthz", {}),
                ("/", {}),
            ]
            path, params = calls[n % len(calls)]
            n += 1
            started = time.perf_counter()
            try:
                response = await http.get(path, params=params)
                if response.status_code != 200:
                    seen.failures[f"{path} {response.status_code}"] += 1
            except httpx.TimeoutException:
                seen.failures[f"{path} timeout"] += 1
            except httpx.HTTPError as exc:
                seen.failures[f"{path} {type(exc).__name__}"] += 1
            seen.latencies_ms.append((time.perf_counter() - started) * 1000)
            next_at = max(next_at + 1 / rate, time.monotonic())
    return seen


def _attack_in_process(name: str, server: Server, stop_at: float) -> Counter[str]:
    """Run the named attack on its own event loop, in the attacker's process; its answers."""
    answers: Counter[str] = Counter()
    asyncio.run(ATTACKS[name](server, stop_at, answers))
    return answers


def attacker_process() -> ProcessPoolExecutor:
    """One separate process for the attacks, started (and its imports done) before any phase.

    A thread would share this process's interpreter lock: the attack's own client work (200
    connections, megabytes of answers read) would then delay the normal client's calls and
    be counted as server latency. `monotonic()` is one clock across processes (Linux).
    """
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(int).result()
    return pool


async def phase(
    server: Server,
    attack: str | None,
    seconds: float,
    rate: float,
    attacker: ProcessPoolExecutor | None = None,
) -> tuple[Normal, Counter[str]]:
    """The normal client for `seconds`, beside the named attack (in `attacker`) if given."""
    stop_at = time.monotonic() + seconds
    if attack is None or attacker is None:
        return await normal_client(server, stop_at, rate), Counter()
    loop = asyncio.get_running_loop()
    attacked = loop.run_in_executor(attacker, _attack_in_process, attack, server, stop_at)
    seen = await normal_client(server, stop_at, rate)
    return seen, await attacked


async def settle(server: Server, quick_ms: float, limit_s: float = 60.0) -> float:
    """Wait until /healthz answers within `quick_ms` again (work an attack left behind)."""
    started = time.monotonic()
    transport = httpx.AsyncHTTPTransport(local_address=NORMAL_SOURCE)
    async with httpx.AsyncClient(base_url=server.base, transport=transport, timeout=5) as http:
        while time.monotonic() - started < limit_s:
            asked = time.perf_counter()
            try:
                await http.get("/healthz")
                if (time.perf_counter() - asked) * 1000 <= quick_ms:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)  # polling a server we do not control, not a sync point
    return time.monotonic() - started


# --- the server -------------------------------------------------------------------------------


def src_paths(src: Path | None) -> list[str]:
    """The map API and contracts source directories of another checkout."""
    if src is None:
        return []
    paths = [src / "services" / "map-api" / "src", src / "shared" / "src"]
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise SystemExit(f"--src {src}: no {', '.join(missing)}; point it at a Connect311 checkout")
    return [str(p) for p in paths]


def server_env(paths: list[str], db_url: str, port: int, bootstrap: str | None) -> dict[str, str]:
    """The environment of the map API process: production defaults, a loopback base URL."""
    env = {
        **os.environ,
        "MAP_API_DATABASE_URL": db_url,
        "MAP_API_CONSUME": "true" if bootstrap else "false",
        "CONNECT311_SECRET_KEY": "abuse-bench-secret-not-for-production",
        "CONNECT311_PUBLIC_BASE_URL": f"http://{HOST}:{port}",
        "LOG_FORMAT": "text",
    }
    if bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])
    return env


def code_in_use(env: dict[str, str]) -> str:
    """Where the server process will import the map API from (checked, not assumed)."""
    probe = "import connect311_map_api as m, pathlib; print(pathlib.Path(m.__file__).parent)"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`connect311-map-api run` (info logs, access lines, redaction) on the loopback port."""
    command = [
        sys.executable, "-m", "connect311_map_api", "run", "--http-host", HOST,
        "--http-port", str(port), "--log-level", "info",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    tail = log.read_text(errors="replace")[-2000:]
    raise SystemExit(f"the map API did not start; its log ends:\n{tail}")


def page_maxima(port: int) -> Server:
    """The largest `limit` and `page_size` the server's OpenAPI document allows."""

    def maximum(spec: dict[str, Any], path: str, name: str, fallback: int) -> int:
        for param in spec.get("paths", {}).get(path, {}).get("get", {}).get("parameters", []):
            if param.get("name") == name:
                return int(param.get("schema", {}).get("maximum", fallback))
        return fallback

    try:
        spec = httpx.get(f"http://{HOST}:{port}/openapi.json", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        spec = {}
    return Server(
        port,
        maximum(spec, "/api/requests", "limit", FALLBACK_MAX_LIMIT),
        maximum(spec, "/open311/v2/requests.xml", "page_size", FALLBACK_MAX_PAGE_SIZE),
    )


# --- the run ----------------------------------------------------------------------------------


def answers_text(answers: Counter[str]) -> str:
    """`status xN` pairs, most frequent first."""
    return ", ".join(f"{k} x{v}" for k, v in answers.most_common()) or "-"


def row(name: str, seen: Normal, base_p95: float, answers: Counter[str] | None) -> str:
    """One line of the table."""
    p95 = seen.pct(0.95)
    ratio = p95 / base_p95 if base_p95 > 0 else float("nan")
    ok = ratio <= RATIO_LIMIT and not seen.failures
    verdict = "-" if answers is None else ("pass" if ok else "FAIL")
    failed = sum(seen.failures.values())
    shown = "-" if answers is None else answers_text(answers)
    return (
        f"{name:<14} {len(seen.latencies_ms):>5} {seen.pct(0.5):>8.1f} {p95:>8.1f} "
        f"{ratio:>7.1f}x {verdict:>5} {failed:>6}  {shown}"
    )


def parse_args() -> argparse.Namespace:
    """The command line."""
    described = "\n".join(
        f"  {name:<13} {(attack.__doc__ or '').strip()}" for name, attack in ATTACKS.items()
    )
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog=f"attacks (--attacks):\n{described}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--quick", action="store_true", help="3 s phases, 1,000 requests")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated, in order")
    parser.add_argument("--seeded", type=int, default=3000, help="requests in the database")
    parser.add_argument("--rate", type=float, default=20.0, help="normal calls per second")
    parser.add_argument(
        "--slow-hold",
        type=float,
        default=15.0,
        help="shortest phase for the slow attacks (the map API's read timeouts are 10 s)",
    )
    parser.add_argument(
        "--attack-rate",
        type=float,
        default=CLIENT_RATE,
        help="requests per second per attacking client (0: back to back)",
    )
    parser.add_argument(
        "--src", type=Path, default=None, help="another Connect311 checkout whose code to serve"
    )
    parser.add_argument(
        "--no-broker", action="store_true", help="no local broker (skips the sign-up flood)"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.seeded = min(args.duration, 3.0), min(args.seeded, 1000)
    unknown = [a for a in args.attacks.split(",") if a not in ATTACKS]
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}; choose from {', '.join(ATTACKS)}")
    return args


def main() -> None:
    """Seed, serve, run the baseline and every attack, print the table and the verdict."""
    args = parse_args()
    paths = src_paths(args.src)
    sys.path[:0] = paths  # seed with the schema of the code being served
    sys.path.insert(0, str(ROOT))
    from map_api import seed

    from connect311_local.broker import free_port, running_broker
    from connect311_map_api.db.engine import create_schema, make_engine

    attacks = args.attacks.split(",")
    if args.no_broker and NEEDS_BROKER & set(attacks):
        print(f"--no-broker: skipping {', '.join(sorted(NEEDS_BROKER & set(attacks)))}")
        attacks = [a for a in attacks if a not in NEEDS_BROKER]
    print(f"machine: {machine()}")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bootstrap = None
        if not args.no_broker:
            broker = stack.enter_context(running_broker(log_path=tmp / "broker.log"))
            bootstrap = broker.bootstrap_servers
        db_url = f"sqlite:///{tmp / 'abuse.db'}"
        engine = make_engine(db_url, 5000)
        create_schema(engine)
        print(f"seeding {args.seeded:,} requests ...", flush=True)
        seed(engine, args.seeded)
        engine.dispose()
        port = free_port()
        env = server_env(paths, db_url, port, bootstrap)
        print(f"map API code: {code_in_use(env)}")
        process = start_server(env, port, tmp / "map-api.log")
        try:
            server = replace(page_maxima(port), client_rate=args.attack_rate)
            run(server, attacks, args, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()  # still answering what an attack left behind
                process.wait()


def run(
    server: Server, attacks: list[str], args: argparse.Namespace, process: subprocess.Popen[bytes]
) -> None:
    """The phases, a progress line each, then the table and the verdict."""
    print(
        f"{args.duration:g} s per phase ({args.slow_hold:g} s at least for {', '.join(SLOW)}), "
        f"normal client {args.rate:g} calls/s from {NORMAL_SOURCE} (street map query, /healthz, "
        f"map page); max pages asked: limit={server.max_limit}, "
        f"page_size={server.max_page_size}; attacking clients send at most "
        f"{server.client_rate:g} requests/s each (0: back to back)."
    )
    attacker = attacker_process()
    try:
        results, baseline, again = phases(server, attacks, args, process, attacker)
    finally:
        attacker.shutdown(cancel_futures=True)
    # The quieter baseline is the reference: noise in one baseline must not hide an attack.
    reference = min(baseline.pct(0.95), again.pct(0.95))
    print(
        f"\nreference p95 {reference:.1f} ms: the lower of the two baselines "
        f"({baseline.pct(0.95):.1f} and {again.pct(0.95):.1f} ms; their gap is this run's noise)"
    )
    print(f"{'phase':<14} {'calls':>5} {'p50 ms':>8} {'p95 ms':>8} {'p95/ref':>8} "
          f"{'2x':>5} {'failed':>6}  server answers to the attack")  # fmt: skip
    print(row("baseline", baseline, reference, None))
    for name, seen, answers in results:
        print(row(name, seen, reference, answers))
    print(row("baseline again", again, reference, None))
    verdict(results, reference)


def phases(
    server: Server,
    attacks: list[str],
    args: argparse.Namespace,
    process: subprocess.Popen[bytes],
    attacker: ProcessPoolExecutor,
) -> tuple[list[tuple[str, Normal, Counter[str]]], Normal, Normal]:
    """The baseline, each attack beside the normal client, the baseline again."""
    # Warm-up, not counted: a phase's length. With 1 s, the first two phases ran slower than the
    # last baseline whatever their attack (p95 up to 3x: the fresh server's caches and heap).
    asyncio.run(phase(server, None, args.duration, args.rate))
    baseline, _ = asyncio.run(phase(server, None, args.duration, args.rate))
    progress("baseline", baseline)
    results: list[tuple[str, Normal, Counter[str]]] = []
    for name in attacks:
        seconds = max(args.duration, args.slow_hold) if name in SLOW else args.duration
        seen, answers = asyncio.run(phase(server, name, seconds, args.rate, attacker))
        results.append((name, seen, answers))
        progress(name, seen)
        if process.poll() is not None:
            print(f"the map API exited (code {process.returncode}) during {name}; stopping")
            break
        waited = asyncio.run(settle(server, quick_ms=max(50.0, 3 * baseline.pct(0.5))))
        if waited > 1.0:
            print(f"  (the server needed {waited:.1f} s to answer /healthz quickly again)")
    again, _ = asyncio.run(phase(server, None, args.duration, args.rate))
    progress("baseline again", again)
    return results, baseline, again


def progress(name: str, seen: Normal) -> None:
    """A line as each phase ends."""
    print(
        f"  {name}: {len(seen.latencies_ms)} normal calls, p50 {seen.pct(0.5):.1f} ms, "
        f"p95 {seen.pct(0.95):.1f} ms, {sum(seen.failures.values())} failed",
        flush=True,
    )


def is_5xx(answer: str) -> bool:
    """Whether an answer label (`500`, `NaN radius: 500`, `503 after 3 s`) is a server error."""
    return any(
        len(w) == 3 and w.isdigit() and w[0] == "5" for w in answer.replace(":", " ").split()
    )


def verdict(results: list[tuple[str, Normal, Counter[str]]], base_p95: float) -> None:
    """One line on the aim (p95 within 2x, no failed normal call), one on 5xx answers."""
    failed = [
        f"{name} {seen.pct(0.95) / base_p95:.1f}x"
        + (f" ({sum(seen.failures.values())} normal calls failed)" if seen.failures else "")
        for name, seen, _ in results
        if seen.pct(0.95) > RATIO_LIMIT * base_p95 or seen.failures
    ]
    errors = sum(n for _, _, answers in results for k, n in answers.items() if is_5xx(k))
    if failed:
        print(
            f"\nverdict: FAIL: {len(failed)} of {len(results)} attacks pushed the normal p95 "
            f"past {RATIO_LIMIT:.0f}x the reference ({base_p95:.1f} ms) or failed normal calls: "
            + "; ".join(failed)
        )
    else:
        print(
            f"\nverdict: pass: no attack of {len(results)} pushed the normal p95 past "
            f"{RATIO_LIMIT:.0f}x the reference ({base_p95:.1f} ms) and no normal call failed"
        )
    print(f"5xx answers to the attacks: {errors}")


if __name__ == "__main__":
    main()
