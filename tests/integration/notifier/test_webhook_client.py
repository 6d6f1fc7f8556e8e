"""Webhook delivery against a real local receiver (HTTP and HTTPS) that verifies signatures.

The receiver is an aiohttp server on 127.0.0.1 checking every request with the notifier's
own `verify`; the HTTPS one holds a certificate for hooks.example.com from a throwaway CA,
so a delivery only succeeds when the client connects to the pinned address while naming
the host for TLS (SNI and certificate check) and in the Host header.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from connect311_local.broker import free_port
from connect311_notifier.links import LinkBuilder
from connect311_notifier.outcome import Outcome
from connect311_notifier.webhook_client import DeliveryLimits, WebhookClient
from connect311_notifier.webhook_payload import Shape, body, webhook_id
from connect311_notifier.webhook_signing import SignatureError, new_secret, verify
from connect311_notifier.webhook_target import TargetPolicy
from tests.unit.notifier.factories import matched

HOST = "hooks.example.com"
LOOPBACK = TargetPolicy(allow=("127.0.0.1:*",))
FAST = DeliveryLimits(timeout_s=2.0, connect_timeout_s=1.0, max_response_bytes=4096)


@dataclass
class Hit:
    """One request the receiver got, and what its own verification said."""

    headers: dict[str, str]
    body: bytes
    verified: str | None
    refused: str | None


@dataclass
class Receiver:
    """A webhook receiver: how it answers, and what it received."""

    secret: str = field(default_factory=new_secret)
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    answer: bytes = b""
    delay_s: float = 0.0
    endless: bool = False
    hits: list[Hit] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        verified = refused = None
        try:
            verified = verify(self.secret, request.headers, raw, now=time.time())
        except SignatureError as exc:
            refused = exc.reason
        self.hits.append(Hit(dict(request.headers), raw, verified, refused))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.endless:
            return await self._endless(request)
        return web.Response(status=self.status, body=self.answer, headers=self.headers)

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 65536
        deadline = time.monotonic() + 30  # a client that reads on runs into its own timeout
        try:
            while time.monotonic() < deadline:
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading and closed: what the test wants
        return response


async def _serve(receiver: Receiver, tls: ssl.SSLContext | None) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    receiver.port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", receiver.port, ssl_context=tls)
    await site.start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for served in _serve(Receiver(), None):
        yield served


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for hooks.example.com (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=Connect311 test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", f"/CN={HOST}")
    (d / "leaf.ext").write_text(
        f"subjectAltName=DNS:{HOST}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")  # fmt: skip
    return Certificates(d / "ca.pem", d / "leaf.pem", d / "leaf.key")


@pytest.fixture
async def tls_receiver(certificates: Certificates) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert, certificates.key)

    def sni(_obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        receiver.server_names.append(name)

    context.sni_callback = sni
    async for served in _serve(receiver, context):
        yield served


@pytest.fixture
def trust(certificates: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca))


def resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def lookup(host: str, port: int) -> list[str]:
        return list(addresses)

    return lookup


@pytest.fixture
def alert() -> Iterator[tuple[str, bytes]]:
    cmd = matched()
    links = LinkBuilder("https://map.test", "secret")
    yield webhook_id(cmd), body(Shape.STANDARD, cmd, links, ZoneInfo("America/New_York"))


async def test_a_delivery_is_signed_and_the_receiver_verifies_it(
    receiver: Receiver, alert: tuple[str, bytes]
) -> None:
    msg_id, payload = alert
    async with WebhookClient(LOOPBACK, FAST) as client:
        result = await client.deliver(
            f"http://127.0.0.1:{receiver.port}/hooks/311", msg_id, payload, [receiver.secret]
        )
    assert (result.outcome, result.kind, result.status) == (Outcome.SENT, "delivered", 204)
    [hit] = receiver.hits
    assert hit.refused is None and hit.verified == msg_id
    assert hit.body == payload and json.loads(hit.body)["type"] == "request.matched"
    assert hit.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["User-Agent"].startswith("Connect311-Webhooks/")
    assert abs(int(hit.headers["webhook-timestamp"]) - time.time()) < 5


async def test_a_rotated_out_secret_still_verifies(
    receiver: Receiver, alert: tuple[str, bytes]
) -> None:
    msg_id, payload = alert
    async with WebhookClient(LOOPBACK, FAST) as client:
        result = await client.deliver(
            f"http://127.0.0.1:{receiver.port}/", msg_id, payload, [new_secret(), receiver.secret]
        )
    assert result.outcome is Outcome.SENT
    assert receiver.hits[0].verified == msg_id
    assert len(receiver.hits[0].headers["webhook-signature"].split(" ")) == 2


async def test_answers_are_sorted_and_never_kept(
    receiver: Receiver, alert: tuple[str, bytes]
) -> None:
    msg_id, payload = alert
    url = f"http://127.0.0.1:{receiver.port}/"
    async with WebhookClient(LOOPBACK, FAST) as client:
        receiver.status, receiver.headers = 503, {"Retry-After": "7"}
        receiver.answer = b"internal secret stack trace"
        busy = await client.deliver(url, msg_id, payload, [receiver.secret])
        receiver.status, receiver.headers = 410, {}
        gone = await client.deliver(url, msg_id, payload, [receiver.secret])
        receiver.status, receiver.headers = 302, {"Location": f"{url}elsewhere"}
        moved = await client.deliver(url, msg_id, payload, [receiver.secret])
    assert (busy.outcome, busy.kind, busy.retry_after_s) == (Outcome.TEMPORARY, "http_5xx", 7.0)
    assert "stack trace" not in repr(busy)
    assert (gone.outcome, gone.gone) == (Outcome.PERMANENT, True)
    assert (moved.outcome, moved.kind) == (Outcome.PERMANENT, "redirect")
    assert len(receiver.hits) == 3  # the redirect was not followed


async def test_a_slow_receiver_times_out(receiver: Receiver, alert: tuple[str, bytes]) -> None:
    receiver.delay_s = 1.0
    limits = DeliveryLimits(timeout_s=0.2, connect_timeout_s=0.2)
    started = time.monotonic()
    async with WebhookClient(LOOPBACK, limits) as client:
        result = await client.deliver(
            f"http://127.0.0.1:{receiver.port}/", *alert, [receiver.secret]
        )
    assert (result.outcome, result.kind) == (Outcome.TEMPORARY, "timeout")
    assert time.monotonic() - started < 0.8


async def test_an_endless_answer_is_cut_off_after_the_limit(
    receiver: Receiver, alert: tuple[str, bytes]
) -> None:
    receiver.endless = True
    started = time.monotonic()
    async with WebhookClient(LOOPBACK, FAST) as client:
        result = await client.deliver(
            f"http://127.0.0.1:{receiver.port}/", *alert, [receiver.secret]
        )
    assert (result.outcome, result.status) == (Outcome.SENT, 200)
    assert time.monotonic() - started < FAST.timeout_s


async def test_nobody_listening_is_a_temporary_connect_failure(alert: tuple[str, bytes]) -> None:
    async with WebhookClient(LOOPBACK, FAST) as client:
        result = await client.deliver(f"http://127.0.0.1:{free_port()}/", *alert, [new_secret()])
    assert (result.outcome, result.kind) == (Outcome.TEMPORARY, "connect")


async def test_private_targets_are_refused_before_any_connection(
    receiver: Receiver, alert: tuple[str, bytes]
) -> None:
    public_only = TargetPolicy(ports=frozenset({443, receiver.port}))
    async with WebhookClient(public_only, FAST, lookup=resolving_to("127.0.0.1")) as client:
        rebound = await client.deliver(
            f"https://{HOST}:{receiver.port}/", *alert, [receiver.secret]
        )
        literal = await client.deliver(
            f"http://127.0.0.1:{receiver.port}/", *alert, [receiver.secret]
        )
    assert (rebound.outcome, rebound.kind) == (Outcome.PERMANENT, "refused_target")
    assert rebound.reason == "target refused: loopback"
    assert literal.reason == "target refused: scheme"
    assert receiver.hits == []


async def test_a_body_over_the_limit_is_not_sent(receiver: Receiver) -> None:
    async with WebhookClient(LOOPBACK, DeliveryLimits(max_body_bytes=100)) as client:
        result = await client.deliver(
            f"http://127.0.0.1:{receiver.port}/", "msg_big", b"x" * 101, [receiver.secret]
        )
    assert (result.outcome, result.kind) == (Outcome.PERMANENT, "too_large")
    assert receiver.hits == []


async def test_https_goes_to_the_pinned_address_in_the_name_of_the_host(
    tls_receiver: Receiver, trust: ssl.SSLContext, alert: tuple[str, bytes]
) -> None:
    msg_id, payload = alert
    policy = TargetPolicy(allow=(f"{HOST}:*",))
    async with WebhookClient(policy, FAST, verify=trust, lookup=resolving_to("127.0.0.1")) as c:
        result = await c.deliver(
            f"https://{HOST}:{tls_receiver.port}/hook", msg_id, payload, [tls_receiver.secret]
        )
    assert result.outcome is Outcome.SENT, result
    assert tls_receiver.server_names == [HOST]
    [hit] = tls_receiver.hits
    assert hit.verified == msg_id
    assert hit.headers["Host"] == f"{HOST}:{tls_receiver.port}"


async def test_a_certificate_for_another_name_is_a_tls_failure(
    tls_receiver: Receiver, trust: ssl.SSLContext, alert: tuple[str, bytes]
) -> None:
    policy = TargetPolicy(allow=("other.example.net:*",))
    async with WebhookClient(policy, FAST, verify=trust, lookup=resolving_to("127.0.0.1")) as c:
        result = await c.deliver(
            f"https://other.example.net:{tls_receiver.port}/", *alert, [tls_receiver.secret]
        )
    assert (result.outcome, result.kind) == (Outcome.TEMPORARY, "tls")
    assert tls_receiver.hits == []


async def test_the_handshake_needs_the_challenge_back(
    receiver: Receiver, alert: tuple[str, bytes]
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/"
    async with WebhookClient(LOOPBACK, FAST) as client:
        receiver.status, receiver.answer = 200, json.dumps({"challenge": "c-42"}).encode()
        answered = await client.deliver(url, *alert, [receiver.secret], challenge="c-42")
        receiver.answer = b"c-42"
        plain = await client.deliver(url, *alert, [receiver.secret], challenge="c-42")
        receiver.answer = b"ok"
        ignored = await client.deliver(url, *alert, [receiver.secret], challenge="c-42")
    assert answered.outcome is Outcome.SENT and plain.outcome is Outcome.SENT
    assert (ignored.outcome, ignored.kind) == (Outcome.PERMANENT, "verification_failed")
