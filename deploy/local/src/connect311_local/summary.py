"""The local run's one-line progress summary, read from the services' /metrics pages.

The console stays quiet (each process logs to its own file); every so often it gets one line
saying what flowed: request events the map API applied, alerts matched, emails sent, and error
lines in the logs (with where to read them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

# (service, counter family) per figure; a family's samples are summed over their labels.
FIGURES: dict[str, tuple[str, str]] = {
    "events": ("map-api", "map_api_events"),
    "matches": ("matcher", "matcher_matches"),
    "emails sent": ("notifier", "notifier_emails_sent"),
}


@dataclass(frozen=True)
class Summary:
    """What the stack has done since it started."""

    figures: Mapping[str, float | None]  # None: the service did not answer
    errors: int
    log_dir: str

    def line(self, at: datetime) -> str:
        """e.g. `12:03:30  events 1,204 · matches 88 · emails sent 41 · errors 0`."""
        parts = [
            f"{name} {'?' if value is None else f'{value:,.0f}'}"
            for name, value in self.figures.items()
        ]
        errors = f"errors {self.errors:,}"
        if self.errors:
            errors += f" (see {self.log_dir}/*.log)"
        return f"{at:%H:%M:%S}  " + " · ".join([*parts, errors])


def counter_total(metrics_text: str, family_name: str) -> float:
    """The sum of one counter family's `_total` samples in a Prometheus text page."""
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != family_name:
            continue
        total += sum(s.value for s in family.samples if s.name == f"{family_name}_total")
    return total


def read_figures(
    ports: Mapping[str, int], headers: Mapping[str, str] | None = None, timeout_s: float = 2.0
) -> dict[str, float | None]:
    """Each figure from its service's /metrics on 127.0.0.1 (None when it does not answer)."""
    pages: dict[str, str | None] = {}
    figures: dict[str, float | None] = {}
    for name, (service, family) in FIGURES.items():
        if service not in pages:
            pages[service] = _metrics_page(ports[service], headers, timeout_s)
        page = pages[service]
        try:
            figures[name] = None if page is None else counter_total(page, family)
        except ValueError:  # not the Prometheus text format
            figures[name] = None
    return figures


def _metrics_page(port: int, headers: Mapping[str, str] | None, timeout_s: float) -> str | None:
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers=dict(headers or {}), timeout=timeout_s
        )
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


__all__ = ["FIGURES", "Summary", "counter_total", "read_figures"]
