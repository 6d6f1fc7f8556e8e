"""Fixtures every test layer shares: a real local broker per session, data paths."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connect311_bus.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings
from connect311_local.broker import LocalBroker, free_port, running_broker
from tests.support.smtp import SmtpSink, start_smtp_sink

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real feed samples beside the project; skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (project cloned alone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """One real Kafka-protocol broker for the whole test session, on a free port."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with running_broker(log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def kafka_settings(broker: LocalBroker) -> KafkaSettings:
    """Kafka settings pointing at the session broker, with every topic created."""
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    # A thread of its own: Playwright's sync API may already run an event loop on this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ensure_topics(settings)).result()
    return settings


@pytest.fixture
async def fresh_topics(kafka_settings: KafkaSettings) -> AsyncIterator[KafkaSettings]:
    """Kafka settings; tests that need isolation use their own group ids and unique keys."""
    yield kafka_settings


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL from TEST_POSTGRES_URL (default: the local test database)."""
    return os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on a free loopback port; `.port` says where."""
    port = free_port()
    controller, sink = start_smtp_sink(port)
    sink.port = port  # type: ignore[attr-defined]
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped after); SQLAlchemy URL.

    Skips when PostgreSQL is unreachable, unless CONNECT311_REQUIRE_POSTGRES=1 (CI).
    """
    import psycopg

    admin_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CONNECT311_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL unreachable at {admin_url}: {exc}")
    name = f"c311_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PLAYWRIGHT_FIXTURES = {"playwright", "browser", "browser_type", "context", "page"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last.

    Playwright's sync API keeps an event loop running on the main thread for the rest of the
    session once started, which would break every asyncio test collected after it.
    """
    for item in items:
        # Every test of the browser folder, whether or not its file says so, and any other
        # that asks for Playwright (an email's screenshot in a system test).
        uses_playwright = bool(PLAYWRIGHT_FIXTURES & set(getattr(item, "fixturenames", ())))
        in_browser_folder = "e2e/web/" in item.nodeid
        if (in_browser_folder or uses_playwright) and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
