"""The pages on the real broker: alert me all the way (the browser signs up, the map API
publishes, the notifier process mails the confirmation to a real SMTP server, and the link in
that email confirms in the browser), and request events reaching an open map live."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from connect311_bus.kafka import encode, ensure_topics, producer
from connect311_contracts.events import RequestEvent, RequestOpened
from connect311_contracts.request import RequestStatus
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import REQUEST_EVENTS
from connect311_local.broker import free_port, running_broker
from tests.e2e.web.app_under_test import SECRET, build_kafka_app
from tests.e2e.web.conftest import screenshot, uvicorn_thread
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, SEEDED, Seeded, snapshot
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"


@pytest.fixture(scope="module")
def web_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaSettings]:
    """A broker of this module's own, with every topic created.

    Not the session broker: a map API in a new consumer group reads requests.events.v1 from
    the beginning, and events other tests published there would crowd the map under test.
    Topics are created from a worker thread: Playwright's sync API already runs an event
    loop in this one.
    """
    with running_broker(log_path=tmp_path_factory.mktemp("web-broker") / "tansu.log") as broker:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, ensure_topics(settings)).result(timeout=60)
        yield settings


@pytest.fixture
def map_api_on_kafka(web_kafka: KafkaSettings, tmp_path: Path) -> Iterator[str]:
    """The map API consuming and publishing through the session's broker; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = partial(
        build_kafka_app,
        f"sqlite:///{tmp_path / 'map.db'}",
        base_url=url,
        tile_url=url + "/test-tiles/{z}/{x}/{y}.png",
        kafka=web_kafka,
        name=f"web-e2e-{uuid.uuid4().hex[:8]}",
    )
    # Built inside the server's loop: the Kafka producer binds to the loop it is made in.
    with uvicorn_thread(app, port, factory=True):
        yield url


@pytest.fixture
def notifier(
    web_kafka: KafkaSettings, smtp_sink: SmtpSink, map_api_on_kafka: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The notifier as its own process, mailing to the SMTP sink."""
    http_port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": web_kafka.bootstrap_servers,
        "NOTIFIER_SMTP_HOST": "127.0.0.1",
        "NOTIFIER_SMTP_PORT": str(smtp_sink.port),  # type: ignore[attr-defined]
        "NOTIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'notifier.db'}",
        "NOTIFIER_GROUP_ID": f"web-e2e-notifier-{uuid.uuid4().hex[:8]}",
        "NOTIFIER_HTTP_PORT": str(http_port),
        "CONNECT311_SECRET_KEY": SECRET,
        "CONNECT311_PUBLIC_BASE_URL": map_api_on_kafka,
    }
    log = (tmp_path / "notifier.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "connect311_notifier", "run", "--log-level", "WARNING"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"notifier exited: {(tmp_path / 'notifier.log').read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("notifier did not become healthy within 60 s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def mail_to(sink: SmtpSink, address: str, timeout_s: float = 60.0) -> EmailMessage:
    """The first message to `address` (the shared broker may carry other tests' mail)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sink.lock:
            for message in sink.messages:
                if address in str(message["To"]):
                    return message
        time.sleep(0.1)
    raise AssertionError(f"no email to {address} within {timeout_s} s")


def test_alert_me_ends_with_a_confirmation_email_that_confirms(
    map_api_on_kafka: str,
    notifier: subprocess.Popen[bytes],
    smtp_sink: SmtpSink,
    page: Page,
) -> None:
    address = f"resident-{uuid.uuid4().hex[:8]}@example.org"
    page.goto(map_api_on_kafka + "/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    page.get_by_role("button", name="Alert me about a place").click()
    page.get_by_role("button", name="use the centre of the map").click()
    expect(page.locator("path.alert-circle")).to_have_count(1)
    expect(page.locator("#alert-preview")).to_contain_text("per week")
    page.get_by_label("Your email").fill(address)
    # Attacker-chosen text must not reach the stranger's inbox (issue 12): only system facts.
    page.get_by_label("Name this alert (optional)").fill(
        "Refund due: log in at https://evil.example"
    )
    page.get_by_role("button", name="Send me a confirmation email").click()
    expect(page.locator("#alert-message")).to_contain_text("Check your inbox")

    message = mail_to(smtp_sink, address)
    body = message.get_body(preferencelist=("plain", "html"))
    assert body is not None
    text = body.get_content()
    links = re.findall(r"https?://[^\s\"'<>]+/api/subscriptions/confirm\?token=[\w.\-]+", text)
    assert links, f"no confirmation link in the email:\n{text}"
    assert links[0].startswith(map_api_on_kafka)
    assert "evil.example" not in message.as_string() and "Refund" not in text
    assert "of a point on the map" in text
    page.goto(links[0])
    assert urlsplit(page.url).path == "/subscriptions/confirmed"
    expect(page.get_by_role("heading", level=1)).to_have_text("Your alert is confirmed")
    screenshot(page, "web-alert-email-confirmed")

    # The same from the Spanish page: the email is Spanish, and so is the page its link
    # opens (issue 16).
    vecina = f"vecina-{uuid.uuid4().hex[:8]}@example.org"
    page.goto(map_api_on_kafka + "/?lang=es#alert")
    page.get_by_role("button", name="use el centro del mapa").click()
    expect(page.locator("#alert-preview")).to_contain_text("por semana")
    page.get_by_label("Su correo electrónico").fill(vecina)
    page.get_by_role("button", name="Enviarme un correo de confirmación").click()
    expect(page.locator("#alert-message")).to_contain_text("Revise su bandeja de entrada")
    spanish = mail_to(smtp_sink, vecina)
    assert str(spanish["Subject"]) == "Confirme sus alertas de Connect311"
    assert spanish["Content-Language"] == "es"
    body = spanish.get_body(preferencelist=("plain",))
    assert body is not None
    texto = body.get_content()
    assert "a menos de 500 m de un punto del mapa" in texto and "Confirme la suscripción" in texto
    enlace = re.findall(r"https?://\S+/api/subscriptions/confirm\?token=[\w.\-]+&lang=es", texto)
    assert enlace, texto
    page.goto(enlace[0])
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text("Su alerta está confirmada")
    screenshot(page, "web-alert-email-confirmed-es")


def produce(kafka: KafkaSettings, events: list[RequestEvent]) -> None:
    """Publish request events as the ingestor does (from a worker thread: see web_kafka)."""

    async def send() -> None:
        client = producer(kafka, "web-e2e-ingestor")
        await client.start()
        try:
            for event in events:
                key = event.request.service_request_id.encode()
                await client.send_and_wait(REQUEST_EVENTS.name, encode(event), key=key)
        finally:
            await client.stop()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result(timeout=60)


def test_a_request_event_on_the_broker_appears_on_the_open_map(
    map_api_on_kafka: str, web_kafka: KafkaSettings, page: Page
) -> None:
    # (The page comes last so it closes its live stream before the server stops.)
    page.goto(map_api_on_kafka + "/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    expect(page.locator("#map")).to_have_attribute("data-live", "connected")
    name = f"Live {uuid.uuid4().hex[:6]}"
    live = Seeded(
        uuid.uuid4().hex[:12], "Transportation", "pothole", name, RequestStatus.OPEN, (), ""
    )
    now = datetime.now(UTC)
    request = snapshot(live, 0, RequestStatus.OPEN, now, None, now)
    # At the map centre, which no seeded request occupies.
    request = request.model_copy(update={"lat": CENTER_LAT, "long": CENTER_LONG})
    produce(web_kafka, [RequestOpened(request=request)])
    expect(page.locator(f'{MARKERS}[title="{name} (Open)"]')).to_have_count(1, timeout=30_000)
    screenshot(page, "web-map-live-from-broker")
