"""Prometheus metrics, in a registry of their own (so tests can run several notifiers)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from connect311_bus.consume import consumer_lag_gauge
from connect311_bus.loop_lag import LoopLag


class Metrics:
    """Everything /metrics exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Started where the service starts its tasks; see connect311_bus.loop_lag.
        self.loop_lag = LoopLag(self.registry, "notifier")
        r = self.registry
        self.sent = Counter("notifier_emails_sent", "Emails SMTP accepted", ["kind"], registry=r)
        self.failed = Counter(
            "notifier_emails_failed",
            "Delivery attempts that failed",
            ["kind", "outcome"],
            registry=r,
        )
        self.deduplicated = Counter(
            "notifier_commands_deduplicated",
            "Redelivered or replayed commands ignored",
            ["kind"],
            registry=r,
        )
        self.commands = Counter(
            "notifier_commands",
            "Commands recorded, by route and reason",
            ["route", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "notifier_retries", "Temporary failures scheduled again", ["kind"], registry=r
        )
        self.dead_letters = Counter(
            "notifier_dead_letters", "Messages dead-lettered", ["topic", "why"], registry=r
        )
        self.bounces = Counter(
            "notifier_bounces", "SubscriptionBounced published", ["disable"], registry=r
        )
        self.resent_after_crash = Counter(
            "notifier_resent_after_crash",
            "Emails found 'sending' at start-up and sent again (same Message-ID)",
            registry=r,
        )
        self.smtp_reachable = Gauge(
            "notifier_smtp_reachable",
            "1 while the SMTP server opens sessions, 0 during an outage (delivery paused)",
            registry=r,
        )
        self.smtp_reachable.set(1)
        self.smtp_outages = Counter(
            "notifier_smtp_outages", "Times the SMTP server became unreachable", registry=r
        )
        self.smtp_probes = Counter(
            "notifier_smtp_probes",
            "Probes of an unreachable SMTP server, by result (answered or unreachable)",
            ["result"],
            registry=r,
        )
        self.smtp_backlog_drain = Gauge(
            "notifier_smtp_backlog_drain_seconds",
            "After the last SMTP outage: from the server answering again to nothing left due",
            registry=r,
        )
        self.consumer_lag = consumer_lag_gauge(self.registry, "notifier")
        self.digest_queue = Gauge(
            "notifier_digest_queue_size", "Digest items waiting for their digest", registry=r
        )
        self.webhook_commands = Counter(
            "notifier_webhook_commands",
            "Commands for a subscription's webhook, by route and reason (webhook_disabled, ...)",
            ["route", "reason"],
            registry=r,
        )
        self.webhooks_sent = Counter(
            "notifier_webhooks_sent", "Webhooks the receiver accepted (2xx)", ["format"], registry=r
        )
        self.webhooks_failed = Counter(
            "notifier_webhooks_failed",
            "Webhook attempts that failed, by kind (http_5xx, timeout, connect, refused_target...)",
            ["kind"],
            registry=r,
        )
        self.webhook_retries = Counter(
            "notifier_webhook_retries", "Webhook attempts scheduled again", registry=r
        )
        self.webhook_verifications = Counter(
            "notifier_webhook_verifications",
            "Verification handshakes before a URL's first delivery, by result",
            ["result"],
            registry=r,
        )
        self.webhooks_disabled = Counter(
            "notifier_webhooks_disabled",
            "Webhooks turned off (gone: a 410; failing: repeated failures)",
            ["why"],
            registry=r,
        )
        self.latency = Histogram(
            "notifier_command_to_smtp_seconds",
            "From the command's Kafka timestamp to SMTP accepting the email",
            ["kind"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
            registry=r,
        )
