"""Prometheus metrics of one matcher (own registry, so two matchers can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from connect311_bus.consume import consumer_lag_gauge
from connect311_bus.loop_lag import LoopLag


class MatcherMetrics:
    """Counters, gauges and the match-latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Started where the service starts its tasks; see connect311_bus.loop_lag.
        self.loop_lag = LoopLag(self.registry, "matcher")
        r = self.registry
        self.events_in = Counter(
            "matcher_events_total", "Request events read, by outcome", ["outcome"], registry=r
        )
        self.matches_out = Counter(
            "matcher_matches_total",
            "Notifications sent, by subscription kind",
            ["kind"],
            registry=r,
        )
        self.dead_letters = Counter(
            "matcher_dead_letters_total", "Messages dead-lettered, by topic", ["topic"], registry=r
        )
        self.subscriptions = Gauge(
            "matcher_subscriptions", "Active subscriptions held, by kind", ["kind"], registry=r
        )
        self.subscription_changes = Counter(
            "matcher_subscription_changes_total", "Subscription records applied", registry=r
        )
        self.latency = Histogram(
            "matcher_match_seconds",
            "Time to find the matches of one event and write its commands",
            buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0),
            registry=r,
        )
        self.bytes_per_subscription = Gauge(
            "matcher_index_bytes_per_subscription",
            "Index arrays and held subscription JSON per subscription (Python objects excluded)",
            registry=r,
        )
        self.grid_rebuilds = Counter(
            "matcher_grid_rebuilds_total", "Cover-grid rebuilds installed", registry=r
        )
        self.broker_recoveries = Counter(
            "matcher_broker_recoveries_total",
            "Times the broker had lost its topics and subscriptions were read again",
            registry=r,
        )
        self.ready = Gauge("matcher_ready", "1 once subscriptions are caught up", registry=r)
        self.consumer_lag = consumer_lag_gauge(self.registry, "matcher")
