"""Department digests in the map API: which day is owed, what the digest lists (against an
independent recount), and the schedule sending each subscription one digest per day."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from connect311_contracts.digests import DepartmentDigestRequested, digest_event_id
from connect311_contracts.due import DueInput
from connect311_contracts.request import RequestStatus
from connect311_contracts.service_levels import ServiceLevels, Target
from connect311_contracts.subscriptions import (
    CircleTarget,
    Delivery,
    DepartmentDigestTarget,
    Subscription,
    SubscriptionStatus,
)
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.core.department_digest import (
    OpenRequest,
    digest_content,
    digest_day,
    next_digest_start,
)
from connect311_map_api.db import subscription_store
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.department_digests import DepartmentDigests
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.conftest import SECRET
from tests.unit.map_api.factories import RecordingPublisher, event, snapshot

NY = ZoneInfo("America/New_York")


def test_a_digest_day_starts_at_the_local_hour_across_dst() -> None:
    assert digest_day(datetime(2024, 5, 6, 10, 59, tzinfo=UTC), NY, 7) == date(2024, 5, 5)
    assert digest_day(datetime(2024, 5, 6, 11, 0, tzinfo=UTC), NY, 7) == date(2024, 5, 6)
    # 7:00 AM is 11:00 UTC in summer, 12:00 UTC after the clocks go back (3 Nov 2024).
    assert digest_day(datetime(2024, 11, 3, 11, 30, tzinfo=UTC), NY, 7) == date(2024, 11, 2)
    assert next_digest_start(datetime(2024, 11, 2, 12, 0, tzinfo=UTC), NY, 7) == datetime(
        2024, 11, 3, 12, 0, tzinfo=UTC
    )


NOW = datetime(2024, 5, 6, 12, 0)  # naive UTC, as stored
LEVELS = ServiceLevels(zone=NY, by_code={"hour": Target(hours=48)})  # keys folded


def _random_rows(seed: int) -> list[OpenRequest]:
    rng = random.Random(seed)
    rows = []
    for i in range(80):
        made = NOW - timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
        feed = made + timedelta(hours=rng.randrange(-5, 300)) if rng.random() < 0.4 else None
        code = rng.choice(["HOUR", "NONE"])
        due = DueInput(made, feed, code, None, "Streets", is_open=rng.random() < 0.8)
        rows.append(OpenRequest(f"t:{i:03d}", "Pothole", None, due))
    return rows


def _recount(rows: list[OpenRequest]) -> tuple[list[tuple[str, int]], list[str]]:
    """The digest's lists worked out plainly: due = the feed's date when not before the
    request, else 48 h for HOUR, else none; overdue = open and past due."""
    late, still_open = [], []
    for row in rows:
        d = row.due
        if not d.is_open:
            continue
        still_open.append((d.requested_at, row.service_request_id))
        if d.expected_at is not None and d.expected_at >= d.requested_at:
            due = d.expected_at
        elif d.service_code == "HOUR":
            due = d.requested_at + timedelta(hours=48)
        else:
            continue
        if due < NOW:
            late.append((row.service_request_id, int((NOW - due).total_seconds())))
    late.sort(key=lambda p: (-p[1], p[0]))
    return late, [rid for _, rid in sorted(still_open)]


@pytest.mark.parametrize("seed", range(5))
def test_the_lists_and_counts_equal_a_plain_recount(seed: int) -> None:
    rows = _random_rows(seed)
    late, oldest = _recount(rows)
    content = digest_content(rows, LEVELS, NOW, items=10)
    assert (content.open_count, content.overdue_count) == (len(oldest), len(late))
    assert [(e.service_request_id, e.overdue_by_s) for e in content.overdue] == late[:10]
    assert [e.service_request_id for e in content.oldest_open] == oldest[:10]
    ages = [e.age_s for e in content.oldest_open]
    assert ages == sorted(ages, reverse=True)


# ------------------------------------------------------------------ the schedule


class Recording:
    def __init__(self) -> None:
        self.sent: list[DepartmentDigestRequested] = []
        self.fail = False

    async def department_digest(self, command: DepartmentDigestRequested) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append(command)


def _sub(sid: str, target: object, status: SubscriptionStatus) -> Subscription:
    return Subscription(
        subscription_id=sid,
        email=f"{sid}@example.city",
        label="Our backlog",
        target=target,  # type: ignore[arg-type]
        delivery=Delivery.DAILY,
        status=status,
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )


def test_each_subscription_gets_one_digest_per_day(tmp_path: Path) -> None:
    settings = MapApiSettings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", consume=False, department_digest_hour=7
    )
    engine = make_engine(settings.database_url)
    create_schema(engine)
    made = datetime(2024, 5, 1, 12, tzinfo=UTC)
    late = snapshot("late", opened=made).model_copy(
        update={"expected_datetime": made + timedelta(days=1)}
    )
    fresh = snapshot("fresh", opened=made + timedelta(days=4))
    closed = snapshot("closed", opened=made, status=RequestStatus.CLOSED)
    water = snapshot("water", opened=made, agency="Water")
    streets = DepartmentDigestTarget(agency="Streets")
    with engine.begin() as conn:
        apply_events(conn, [event("opened", r) for r in (late, fresh, closed, water)])
        subscription_store.insert(conn, _sub("d1", streets, SubscriptionStatus.ACTIVE))
        subscription_store.insert(conn, _sub("d2", streets, SubscriptionStatus.PENDING))
        circle = CircleTarget(lat=27.77, long=-82.64, radius_m=500)
        subscription_store.insert(conn, _sub("c1", circle, SubscriptionStatus.ACTIVE))
    now = [datetime(2024, 5, 6, 15, 0, tzinfo=UTC)]
    publisher = Recording()
    digests = DepartmentDigests(engine, publisher, settings, clock=lambda: now[0])  # type: ignore[arg-type]

    publisher.fail = True  # not recorded: tried again next round
    with pytest.raises(ConnectionError):
        asyncio.run(digests.send_owed())
    publisher.fail = False
    assert asyncio.run(digests.send_owed()) == 1
    assert asyncio.run(digests.send_owed()) == 0  # the same day: nothing more
    (sent,) = publisher.sent
    assert sent.event_id == digest_event_id("d1", date(2024, 5, 6))
    assert (sent.agency, sent.open_count, sent.overdue_count) == ("Streets", 2, 1)
    assert [e.service_request_id for e in sent.overdue] == ["test:late"]
    assert sent.overdue[0].overdue_by_s == int((now[0] - made - timedelta(days=1)).total_seconds())
    assert [e.service_request_id for e in sent.oldest_open] == ["test:late", "test:fresh"]
    assert sent.subscription.label is None  # the person's words stay out of the command

    now[0] = datetime(2024, 5, 7, 10, 59, tzinfo=UTC)  # 6:59 AM: still the 6th's digest day
    assert asyncio.run(digests.send_owed()) == 0
    now[0] = datetime(2024, 5, 7, 11, 0, tzinfo=UTC)
    assert asyncio.run(digests.send_owed()) == 1
    assert publisher.sent[-1].day == date(2024, 5, 7)
    # A restart (a new scheduler on the same database) sends nothing again.
    again = DepartmentDigests(engine, publisher, settings, clock=lambda: now[0])  # type: ignore[arg-type]
    assert asyncio.run(again.send_owed()) == 0
    engine.dispose()


# ------------------------------------------------------------------ overdue in the API


def _seed_overdue(engine: Engine) -> None:
    now = datetime.now(UTC)
    made = now - timedelta(days=10)
    late = snapshot("late", opened=made).model_copy(
        update={"expected_datetime": now - timedelta(days=5)}
    )
    later = snapshot("later", opened=made).model_copy(
        update={"expected_datetime": now - timedelta(days=4)}
    )
    fresh = snapshot("fresh", opened=now - timedelta(days=1)).model_copy(
        update={"expected_datetime": now + timedelta(days=3)}
    )
    done = snapshot("done", opened=made, status=RequestStatus.CLOSED).model_copy(
        update={"expected_datetime": now - timedelta(days=5)}
    )
    with engine.begin() as conn:
        apply_events(conn, [event("opened", r) for r in (late, later, fresh)])
        apply_events(conn, [event("closed", done)])


def test_the_list_filters_overdue_requests_page_by_page(client: TestClient, engine: Engine) -> None:
    _seed_overdue(engine)
    everything = client.get("/api/requests").json()["features"]
    assert len(everything) == 4
    pages, cursor = [], None
    while True:
        params = {"overdue": "true", "limit": "1", **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/requests", params=params).json()
        pages.append([f["properties"]["service_request_id"] for f in body["features"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(rid for page in pages for rid in page) == ["test:late", "test:later"]
    assert all(len(page) == 1 for page in pages)


def test_the_preview_counts_overdue_alerts_when_asked_for(
    client: TestClient, engine: Engine
) -> None:
    _seed_overdue(engine)
    circle = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}

    def total(kinds: list[str]) -> int:
        body = {"target": circle, "filters": {"event_kinds": kinds}}
        answer: int = client.post("/api/subscriptions/preview", json=body).json()["total"]
        return answer

    # Two went overdue while open; the one closed first never did.
    assert total(["overdue"]) == 2
    assert total(["opened", "overdue"]) == total(["opened"]) + 2


# ------------------------------------------------------------------ sign-up and manage


def test_signing_up_for_a_department_digest(
    client: TestClient, engine: Engine, publisher: RecordingPublisher
) -> None:
    _seed_overdue(engine)  # requests of "Streets"

    def sign_up(agency: str, delivery: str = "daily") -> Response:
        body = {
            "email": "head@example.city",
            "target": {"kind": "department_digest", "agency": agency},
            "delivery": delivery,
        }
        return client.post("/api/subscriptions", json=body)

    unknown = sign_up("Nobody")
    assert unknown.status_code == 422
    assert "no request of this department" in unknown.text
    assert sign_up("Streets", "instant").status_code == 422
    assert sign_up("Streets").status_code == 202
    sub = publisher.confirmations[-1].subscription
    assert sub.target == DepartmentDigestTarget(agency="Streets")
    # Its owner cannot make it anything but daily.
    token = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sub.subscription_id)
    change = {
        "action": "set_delivery",
        "subscription_id": sub.subscription_id,
        "delivery": "weekly",
    }
    refused = client.post("/api/subscriptions/manage", params={"token": token}, json=change)
    assert refused.status_code == 422 and "sent daily" in refused.text
    listed = client.get("/api/subscriptions/manage", params={"token": token}).json()
    assert [s["target"] for s in listed["subscriptions"]] == [
        {"kind": "department_digest", "agency": "Streets"}
    ]
