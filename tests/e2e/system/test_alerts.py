"""End to end: a request reported near a confirmed subscriber reaches their inbox exactly once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from connect311_contracts.events import RequestOpened
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.settings import KafkaSettings
from tests.e2e.system.conftest import Stack, readable, request_record
from tests.e2e.web.test_web_alert_email import produce

CITY_HALL = (27.7731, -82.6400)  # St. Petersburg, FL
INSIDE = (27.7749, -82.6400)  # ~200 m north
OUTSIDE = (27.7911, -82.6400)  # ~2 km north


def _email() -> str:
    return f"resident-{uuid.uuid4().hex[:8]}@example.org"


def test_request_inside_the_radius_mails_once_and_outside_not_at_all(stack: Stack) -> None:
    email = _email()
    stack.subscribe(
        {
            "email": email,
            "label": "Home",
            "delivery": "instant",
            "target": {
                "kind": "circle",
                "lat": CITY_HALL[0],
                "long": CITY_HALL[1],
                "radius_m": 500,
            },
        }
    )
    tag = uuid.uuid4().hex[:6]
    stack.push(
        request_record(f"far-{tag}", *OUTSIDE, description=f"far away {tag}"),
        request_record(f"near-{tag}", *INSIDE, description=f"near <b>{tag}</b>"),
    )
    alert = stack.wait_for_mail(lambda m: email in str(m["To"]) and "Pothole" in str(m["Subject"]))
    text = alert.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert f"near <b>{tag}</b>" in text
    assert "100 Central Ave" in text
    assert "Home" in text
    html = alert.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert f"near &lt;b&gt;{tag}&lt;/b&gt;" in html
    assert alert["List-Unsubscribe"]
    time.sleep(3.0)  # give a wrong second alert (the far request, a duplicate) time to arrive
    alerts = [m for m in stack.mail_to(email) if "confirm" not in str(m["Subject"]).lower()]
    assert len(alerts) == 1
    assert f"far away {tag}" not in readable(alerts[0])


def test_a_resident_following_a_request_gets_each_status_change(stack: Stack) -> None:
    email, tag = _email(), uuid.uuid4().hex[:6]
    record = request_record(f"follow-{tag}", *OUTSIDE)
    stack.push(record)
    stack.wait_for_request(f"push:follow-{tag}")
    stack.subscribe(
        {
            "email": email,
            "delivery": "instant",
            "target": {"kind": "follow", "service_request_id": f"push:follow-{tag}"},
        }
    )
    for status, note in (("in_progress", "Crew assigned"), ("closed", "Pothole filled")):
        stack.push({**record, "status": status, "status_notes": note})
        stack.wait_for_mail(lambda m, n=note: email in str(m["To"]) and n in readable(m))
    updates = [m for m in stack.mail_to(email) if "confirm" not in str(m["Subject"]).lower()]
    assert len(updates) == 2


def test_a_crime_only_alert_receives_crime_incidents_and_nothing_else(stack: Stack) -> None:
    email, tag = _email(), uuid.uuid4().hex[:6]
    stack.subscribe(
        {
            "email": email,
            "label": "School",
            "delivery": "instant",
            "target": {
                "kind": "circle",
                "lat": CITY_HALL[0],
                "long": CITY_HALL[1],
                "radius_m": 500,
            },
            "filters": {"datasets": ["crime"]},
        }
    )
    [confirmation] = stack.mail_to(email)
    assert "crime incidents reported within 500 m of a point on the map" in readable(confirmation)
    # A 311 request and a code violation case at the same spot must not reach this inbox.
    stack.push(request_record(f"pothole-{tag}", *INSIDE, description=f"pothole {tag}"))
    now = datetime.now(UTC)
    incidents = []
    for dataset, name in (("code_violations", f"Overgrowth {tag}"), ("crime", f"BURGLARY {tag}")):
        crime = dataset == "crime"
        incidents.append(
            RequestOpened(
                request=ServiceRequest(
                    service_request_id=f"{dataset}:{tag}",
                    source=dataset,
                    source_request_id=tag,
                    dataset=dataset,
                    service_name=name,
                    # A crime incident has no status: ingested closed at the incident time.
                    status=RequestStatus.CLOSED if crime else RequestStatus.OPEN,
                    raw_status="" if crime else "Open",
                    address="100 block of Central Ave",
                    lat=INSIDE[0],
                    long=INSIDE[1],
                    requested_datetime=now,
                    closed_datetime=now if crime else None,
                )
            )
        )
    # On the broker, as the ingestor publishes an imported dataset's rows.
    produce(KafkaSettings(bootstrap_servers=stack.broker.bootstrap_servers), incidents)
    alert = stack.wait_for_mail(lambda m: email in str(m["To"]) and tag in str(m["Subject"]))
    assert alert["Subject"] == (
        f"Crime incident reported: BURGLARY {tag} near 100 block of Central Ave"
    )
    text = readable(alert)
    assert "Closed" not in text and "Status:" not in text and "Offence: BURGLARY" in text
    time.sleep(3.0)  # give a wrong alert (the pothole, the code violation) time to arrive
    alerts = [m for m in stack.mail_to(email) if "confirm" not in str(m["Subject"]).lower()]
    assert [m["Subject"] for m in alerts] == [alert["Subject"]]
