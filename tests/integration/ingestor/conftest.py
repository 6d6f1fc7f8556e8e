"""Fixtures for the ingestor's integration tests: a running ingestor, a topic reader, and a
real local HTTP server playing a city's feed."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from connect311_bus.kafka import consumer
from connect311_contracts.settings import KafkaSettings
from connect311_ingestor.app import Runtime, running
from connect311_ingestor.settings import IngestorSettings

Reply = tuple[int, dict[str, str], bytes]
Responder = Callable[[dict[str, str]], Reply]


async def read_topic(
    kafka: KafkaSettings, topic: str, key_prefix: str, deadline_s: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` whose key starts with `key_prefix`, read up to the high-water
    mark of each partition (the local broker's end_offsets cannot be trusted)."""
    cons = consumer(kafka, None)
    await cons.start()
    try:
        partitions = cons.partitions_for_topic(topic) or set()
        if not partitions:
            await cons._client.force_metadata_update()
            partitions = cons.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        cons.assign(tps)
        await cons.seek_to_beginning(*tps)
        found: list[ConsumerRecord[bytes, bytes]] = []
        stop_at = time.monotonic() + deadline_s
        while time.monotonic() < stop_at:
            batch = await cons.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                found += [r for r in records if (r.key or b"").decode().startswith(key_prefix)]
            done = True
            for tp in tps:
                high = cons.highwater(tp)
                if high is None or await cons.position(tp) < high:
                    done = False
            if done:
                return found
        raise AssertionError(f"did not reach the end of {topic} within {deadline_s} s")
    finally:
        await cons.stop()


@pytest.fixture
def topic_reader(
    kafka_settings: KafkaSettings,
) -> Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]:
    """read(topic, key_prefix): the records of one test, read to the end of the topic."""

    async def read(topic: str, key_prefix: str) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_topic(kafka_settings, topic, key_prefix)

    return read


@pytest.fixture
def source_name() -> str:
    """A source name no other test uses (the broker is shared by the whole session)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ingestor_settings(tmp_path: Path) -> IngestorSettings:
    """Settings with a fresh SQLite database and push tokens."""
    return IngestorSettings(
        database_url=f"sqlite:///{tmp_path}/ingestor.db",
        push_tokens="tok-1,tok-2",  # type: ignore[arg-type]
        push_max_bytes=20_000,
    )


@pytest.fixture
async def runtime(
    ingestor_settings: IngestorSettings, kafka_settings: KafkaSettings
) -> AsyncIterator[Runtime]:
    """A fully wired ingestor (store, producer, metrics) on the session broker."""
    async with running(ingestor_settings, kafka_settings) as rt:
        yield rt


@dataclass
class FeedServer:
    """A real HTTP server on a free loopback port; routes answer from queued replies."""

    routes: dict[str, list[Responder]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, *responders: Responder) -> None:
        """Answer `path` with each responder in turn; the last one keeps answering."""
        self.routes[path] = list(responders)

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        self.seen.append((path, query))
        queue = self.routes.get(path)
        if not queue:
            return 404, {}, b"not found"
        responder = queue.pop(0) if len(queue) > 1 else queue[0]
        return responder(query)

    @staticmethod
    def reply(status: int, body: bytes | str, **headers: str) -> Responder:
        """A responder that always gives the same answer."""
        return reply(status, body, **headers)


def reply(status: int, body: bytes | str, **headers: str) -> Responder:
    """A responder that always gives the same answer."""
    data = body.encode() if isinstance(body, str) else body
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    return lambda _query: (status, named, data)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A city feed served over real HTTP for the pollers."""
    server_state = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            status, headers, body = server_state.answer(parts.path, query)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def no_sleep() -> Callable[[float], Any]:
    """A sleep that records the delays asked for and yields without waiting long."""
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    sleep.delays = delays  # type: ignore[attr-defined]
    return sleep
