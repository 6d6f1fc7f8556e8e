"""Prometheus metrics of the ingestor, in their own registry (one per running app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class IngestMetrics:
    """Records in, events out, rejects, poll errors and last successful poll per source."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.records_in = Counter(
            "ingestor_records_in",
            "Feed records read, by source",
            ["source"],
            registry=self.registry,
        )
        self.events_out = Counter(
            "ingestor_events_published",
            "Request events published, by event type",
            ["event_type"],
            registry=self.registry,
        )
        self.unchanged = Counter(
            "ingestor_records_unchanged",
            "Records that caused no event (unchanged or older than what is stored)",
            ["source"],
            registry=self.registry,
        )
        self.rejects = Counter(
            "ingestor_records_rejected",
            "Records rejected, by source and reason",
            ["source", "reason"],
            registry=self.registry,
        )
        self.poll_errors = Counter(
            "ingestor_poll_errors",
            "Failed feed polls (after retries), by source",
            ["source"],
            registry=self.registry,
        )
        self.last_poll = Gauge(
            "ingestor_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll, by source",
            ["source"],
            registry=self.registry,
        )
        self.republished = Counter(
            "ingestor_events_republished",
            "Recent events published again after the broker lost its topics",
            registry=self.registry,
        )
        self.broker_recoveries = Counter(
            "ingestor_broker_recoveries",
            "Times the broker lost its topics (or came back) and recent events were re-published",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)
