"""Prometheus metrics of the ingestor, in their own registry (one per running app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from connect311_bus.loop_lag import LoopLag


class IngestMetrics:
    """Records in, events out, rejects, poll errors and last successful poll per source."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Started where the service starts its tasks; see connect311_bus.loop_lag.
        self.loop_lag = LoopLag(self.registry, "ingestor")
        self.http_refused = Counter(
            "ingestor_http_refused",
            "Requests refused before the app saw them (414 line, 431 headers, 408 slow), by status",
            ["status"],
            registry=self.registry,
        )
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
        self.excluded = Counter(
            "ingestor_records_excluded",
            "Records left out because their category is excluded (exclude_service_codes/"
            "names): not published, not rejects, by source",
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
        self.auxiliary_failures = Counter(
            "ingestor_auxiliary_call_failures",
            "Failed auxiliary feed calls (e.g. an Open311 services list) that ingestion "
            "carried on without, by source and call",
            ["source", "call"],
            registry=self.registry,
        )
        self.data_anomalies = Counter(
            "ingestor_data_anomalies",
            "Requests kept despite a data-quality problem (e.g. closed before opened, an "
            "unusable optional date), by source and anomaly kind",
            ["source", "kind"],
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

        self.overdue_sweeps = Counter(
            "ingestor_overdue_sweeps",
            "Overdue sweeps, by outcome (ok; service_levels: the file is unusable, nothing "
            "was judged until it is fixed)",
            ["outcome"],
            registry=self.registry,
        )
        self.overdue_published = Counter(
            "ingestor_overdue_published",
            "RequestOverdue events published, by kind (alert; backfill: noticed longer than "
            "INGESTOR_OVERDUE_ALERT_WINDOW_S after the due time, recorded but never alerted)",
            ["kind"],
            registry=self.registry,
        )
        self.overdue_unreadable = Counter(
            "ingestor_overdue_unreadable_snapshots",
            "Stored snapshots an overdue sweep could not read (left out of the sweep)",
            registry=self.registry,
        )
        self.overdue_last_sweep = Gauge(
            "ingestor_overdue_last_sweep_timestamp_seconds",
            "Unix time the last overdue sweep finished",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)
