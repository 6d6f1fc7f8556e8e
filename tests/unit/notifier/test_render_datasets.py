"""Emails worded per dataset: a crime incident is reported near a place, never "a request that
was closed"; a code violation case is opened and closed; 311 requests read as before."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus
from connect311_contracts.subscriptions import SubscriptionFilters, SubscriptionStatus
from connect311_notifier.links import LinkBuilder
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.factories import confirmation, event, matched, request, subscription
from tests.unit.notifier.test_render import parts, reparse

NOW = datetime(2024, 5, 6, 18, 0, tzinfo=UTC)
BLOCK = "2900 block of J ST"


@pytest.fixture
def renderer() -> Renderer:
    settings = NotifierSettings(from_address="alerts@example.city")
    return Renderer.create(settings, LinkBuilder("https://alerts.example.city", "secret"))


def crime(kind: str = "opened") -> RequestEvent:
    """A crime incident as the ingestor publishes it: closed at the incident time."""
    req = request(status=RequestStatus.CLOSED, address=BLOCK, agency=None).model_copy(
        update={"dataset": "crime", "service_name": "BURGLARY - RESIDENTIAL", "raw_status": ""}
    )
    return event(req, kind)


def test_a_crime_incident_is_reported_near_a_place_with_no_status(renderer: Renderer) -> None:
    msg = reparse(renderer.alert(matched(ev=crime()), False, "<c1@example.city>", NOW))
    text, html = parts(msg)
    assert msg["Subject"] == f"Crime incident reported: BURGLARY - RESIDENTIAL near {BLOCK}"
    for body in (text, html):
        assert "Crime incident reported" in body
        assert f"BURGLARY - RESIDENTIAL near {BLOCK}" in body
        assert "Offence" in body and "Incident" in body
        # No lifecycle: no status, no "closed", no "request", no tracking link.
        assert "Status" not in body and "Closed" not in body and "closed" not in body
        assert "Track this" not in body and "Category" not in body
        assert "request" not in re.sub(r"https?://[^\s\"<>]+", "", body).lower()  # links aside


def test_a_crime_incident_in_a_digest_is_reported_not_closed(renderer: Renderer) -> None:
    sub = subscription(label="School")
    msg = reparse(renderer.digest([matched(sub, crime())], "daily", "<c2@example.city>", NOW))
    text, _ = parts(msg)
    assert "Crime incident reported" in text
    assert "Closed (" not in text and "| Closed" not in text


@pytest.mark.parametrize(
    ("kind", "status", "word"),
    [("opened", RequestStatus.OPEN, "opened"), ("closed", RequestStatus.CLOSED, "closed")],
)
def test_a_code_violation_case_is_opened_and_closed(
    renderer: Renderer, kind: str, status: RequestStatus, word: str
) -> None:
    case = request(status=status).model_copy(
        update={"dataset": "code_violations", "service_name": "Property maintenance"}
    )
    msg = reparse(renderer.alert(matched(ev=event(case, kind)), False, "<v1@example.city>", NOW))
    text, html = parts(msg)
    assert msg["Subject"] == f"Code violation case {word}: Property maintenance at 100 Central Ave"
    for body in (text, html):
        assert "Case type" in body and "Track this case" in body
        assert "Violations" in body  # one case, several violations: its description
        assert "Status" in body  # a case has a status, unlike a crime incident


def test_a_311_request_reads_as_before(renderer: Renderer) -> None:
    msg = reparse(renderer.alert(matched(), False, "<r1@example.city>", NOW))
    text, _ = parts(msg)
    assert msg["Subject"] == "New request: Pothole at 100 Central Ave"
    assert "Category: Pothole" in text and "Track this request" in text and "Status: Open" in text


def test_the_confirmation_names_known_datasets_only(renderer: Renderer) -> None:
    base = subscription(status=SubscriptionStatus.PENDING)
    crime_only = base.model_copy(update={"filters": SubscriptionFilters(datasets=("crime",))})
    text, _ = parts(reparse(renderer.confirmation(confirmation(crime_only), "<k1@x>", NOW)))
    assert "crime incidents reported within 500 m of a point on the map" in text
    assert "dataset" not in text
    # A name the sign-up made up is counted, never shown.
    odd = base.model_copy(update={"filters": SubscriptionFilters(datasets=("crime", "Pay now"))})
    text, _ = parts(reparse(renderer.confirmation(confirmation(odd), "<k2@x>", NOW)))
    assert "311 requests reported within 500 m" in text and "(2 datasets)" in text
    assert "Pay now" not in text
