"""A failing auxiliary call (the Open311 services list) never stops requests being ingested.

The services list only names service codes; when it answers 404 or 500 or never answers,
the poller ingests the requests without names, counts the failure by source and call, logs
one warning line, and asks again on the next poll.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree

from connect311_ingestor.app import Runtime
from connect311_ingestor.settings import Open311Feed
from connect311_ingestor.sources.http import Backoff, Fetcher
from connect311_ingestor.sources.open311 import Open311Poller

NOW = datetime(2024, 5, 3, 0, 0, tzinfo=UTC)
REQUEST = {
    "service_request_id": "41",
    "status": "open",
    "service_code": "001",
    "requested_datetime": (NOW - timedelta(hours=2)).isoformat(),
    "lat": 37.76,
    "long": -122.46,
}


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """Set at the end of the test: frees server threads held to provoke client timeouts."""
    event = threading.Event()
    yield event
    event.set()


def _failure(kind: str, released: threading.Event) -> Any:
    if kind == "timeout":

        def hang(_query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            released.wait(30)  # the client gives up long before (0.2 s timeout)
            return 200, {}, b"[]"

        return hang
    return lambda _query: (int(kind), {}, b"<html>no such thing</html>")


def _failures(runtime: Runtime, source: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "ingestor_auxiliary_call_failures_total", {"source": source, "call": "services"}
    )
    return value or 0.0


@pytest.mark.parametrize("kind", ["404", "500", "timeout"])
async def test_services_list_failure_does_not_stop_requests(
    kind: str,
    runtime: Runtime,
    feed_server: Any,
    no_sleep: Any,
    source_name: str,
    released: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_server.route("/v2/services.json", _failure(kind, released))
    feed_server.route("/v2/requests.json", feed_server.reply(200, json.dumps([REQUEST])))
    feed = Open311Feed(source=source_name, base_url=f"{feed_server.base_url}/v2", backfill_days=1)
    async with httpx.AsyncClient(timeout=0.2) as client:
        fetcher = Fetcher(
            client, max_bytes=100_000, retries=2, backoff=Backoff(base_s=0.01), sleep=no_sleep
        )
        poller = Open311Poller(feed, fetcher, runtime.ingestor, clock=lambda: NOW)
        with caplog.at_level(logging.WARNING, logger="connect311_ingestor.sources.open311"):
            summary = await poller.poll_once()

        assert summary.events == {"request.opened": 1}, "the request is ingested all the same"
        assert _failures(runtime, source_name) == 1.0
        warnings = [r for r in caplog.records if "services list failed" in r.getMessage()]
        assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
        stored = runtime.store.load_states([f"{source_name}:41"])[f"{source_name}:41"]
        assert stored.snapshot.service_name is None, "no name invented"

        # The next poll asks for the list again; once it works, names come back.
        services = [{"service_code": "001", "service_name": "Pothole"}]
        feed_server.route("/v2/services.json", feed_server.reply(200, json.dumps(services)))
        await poller.poll_once()
        assert poller.service_names == {"001": "Pothole"}
        assert _failures(runtime, source_name) == 1.0
    asked = [path for path, _ in feed_server.seen if path == "/v2/services.json"]
    assert len(asked) == (1 if kind == "404" else 3) + 1, "4xx is not retried, 5xx/timeouts are"


OPEN311 = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "open311"


@pytest.mark.skipif(not OPEN311.is_dir(), reason="../shared/data/open311 is absent")
async def test_a_real_xml_feed_is_ingested_while_its_services_list_fails(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str
) -> None:
    """SF311's real requests document (XML), with services.xml answering 500 every time."""
    document = (OPEN311 / "cfa-open311-ruby" / "service_requests.xml").read_bytes()
    ids = [e.findtext("service_request_id") for e in ElementTree.fromstring(document)]
    feed_server.route("/v2/services.xml", lambda _query: (500, {}, b"<html>down</html>"))
    feed_server.route("/v2/requests.xml", feed_server.reply(200, document))
    feed = Open311Feed(
        source=source_name, base_url=f"{feed_server.base_url}/v2", format="xml", use_page=False
    )
    async with httpx.AsyncClient(timeout=5) as client:
        fetcher = Fetcher(client, max_bytes=100_000, retries=1, backoff=Backoff(), sleep=no_sleep)
        poller = Open311Poller(feed, fetcher, runtime.ingestor, clock=lambda: NOW)
        summary = await poller.poll_once()
    assert summary.events == {"request.opened": len(ids)} and len(ids) == 2
    assert _failures(runtime, source_name) == 1.0
    stored = runtime.store.load_states([f"{source_name}:{i}" for i in ids])
    assert {s.snapshot.service_name for s in stored.values()} == {"Sidewalk and Curb Issues"}
