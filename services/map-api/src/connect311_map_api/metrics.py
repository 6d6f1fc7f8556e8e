"""Prometheus metrics, one registry per app so several apps can live in one process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from connect311_bus.consume import consumer_lag_gauge
from connect311_bus.loop_lag import LoopLag


class _SubscriptionCounts(Collector):
    """Subscriptions by status, read from the database at scrape time (counts only)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "map_api_subscriptions", "Subscriptions by status", labels=["status"]
        )
        try:
            for status, count in sorted(self._counts().items()):
                family.add_metric([status], count)
        except Exception:  # a database outage must not break the whole scrape
            return
        yield family


class Metrics:
    """The map API's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Started where the service starts its tasks; see connect311_bus.loop_lag.
        self.loop_lag = LoopLag(self.registry, "map_api")
        self.http_refused = Counter(
            "map_api_http_refused",
            "Requests refused before the app saw them (414 line, 431 headers, 408 slow), by status",
            ["status"],
            registry=self.registry,
        )
        self.events = Counter(
            "map_api_events",
            "Request events seen by the state consumer, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.consumer_lag = consumer_lag_gauge(self.registry, "map_api")
        self.latency = Histogram(
            "map_api_request_seconds",
            "API latency by route",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "map_api_sse_clients", "Open live-update streams", registry=self.registry
        )
        self.signups = Counter(
            "map_api_signups", "Sign-up attempts by outcome", ["outcome"], registry=self.registry
        )
        self.feedback = Counter(
            "map_api_feedback",
            "Subscription feedback messages by outcome",
            ["outcome"],
            registry=self.registry,
        )

        self.broker_recoveries = Counter(
            "map_api_broker_recoveries",
            "Times the broker lost its topics (or came back) and subscriptions were re-published",
            registry=self.registry,
        )

    def watch_subscriptions(self, counts: Callable[[], dict[str, int]]) -> None:
        """Report subscription counts from this callable at each scrape."""
        self.registry.register(_SubscriptionCounts(counts))
