"""Journey: a department head reads the department view, downloads its CSV and embeds it.

Demo-like data: the shipped NYC demo day (data/demo, 1,250 real requests) read by the
ingestor's own NYC profile, its request times spread over the last four months (each keeps
its real time to close and due date), with the shipped example service levels. In real
Chromium the tables are read as a person sees them (text, numbers, order) and must equal the
CSV the page's download link gives; the stats widget must say the page's numbers too.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.events import RequestClosed, RequestEvent, RequestOpened
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.settings import SigningSettings
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.parsers.tabular import parse_row
from connect311_ingestor.records import Accepted
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.db.state_store import apply_events
from tests.e2e.web.app_under_test import RecordingPublisher, web_settings
from tests.e2e.web.conftest import PageProblems, screenshot, uvicorn_thread
from tests.e2e.web.test_accessibility_axe import AXE, WCAG_AA
from tests.e2e.web.test_journey_stats import _shown
from tests.e2e.web.tiles import TILE_PATH, add_tile_route

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "data" / "demo" / "nyc311_2023-02-28_demo.csv"
LEVELS = ROOT / "deploy" / "service-levels.example.toml"
SPREAD_DAYS = 120
NONE = "\u2013"
JOURNEY_SECRET = "departments-journey"


def _spread(request: ServiceRequest, index: int, now: datetime) -> ServiceRequest:
    """The request moved to a day in the last four months, its durations kept."""
    made = request.requested_datetime
    took = None if request.closed_datetime is None else request.closed_datetime - made
    ago = timedelta(days=(index * 7919) % SPREAD_DAYS, hours=(index * 13) % 24)
    if took is not None and request.status is RequestStatus.CLOSED:
        ago = max(ago, took + timedelta(minutes=5))  # closed by now, never in the future
    start = now - ago

    def moved(value: datetime | None) -> datetime | None:
        return None if value is None else start + (value - made)

    return request.model_copy(
        update={
            "requested_datetime": start,
            "updated_datetime": moved(request.updated_datetime),
            "closed_datetime": moved(request.closed_datetime),
            "expected_datetime": moved(request.expected_datetime),
        }
    )


def demo_events(now: datetime) -> list[RequestEvent]:
    """The NYC demo day as the ingestor reads it, spread over the last months."""
    profile = get_profile("nyc")
    events: list[RequestEvent] = []
    with DEMO.open(encoding="utf-8", errors="replace", newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            parsed = parse_row(row, profile, f"row {index + 2}")
            if not isinstance(parsed, Accepted):
                continue  # e.g. no coordinates: the ingestor rejects it with its reason
            req = _spread(parsed.request, index, now)
            if req.status is RequestStatus.CLOSED:
                events.append(RequestClosed(request=req, occurred_at=now))
            else:
                events.append(RequestOpened(request=req, occurred_at=now))
    return events


@pytest.fixture
def demo_site(demo_app: tuple[str, RecordingPublisher]) -> str:
    """The demo site's address."""
    return demo_app[0]


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[tuple[str, RecordingPublisher]]:
    """The map API with the spread demo data and the example service levels, on a port,
    and what it published."""
    publisher = RecordingPublisher()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = web_settings(
        f"sqlite:///{tmp_path / 'map.db'}", url + TILE_PATH, service_levels_file=LEVELS
    )
    app = create_app(
        settings,
        signing=SigningSettings(secret_key=JOURNEY_SECRET, public_base_url=url),
        publisher=publisher,
    )
    add_tile_route(app)
    with app.state.ctx.engine.begin() as conn:
        apply_events(conn, demo_events(datetime.now(UTC)))
    with uvicorn_thread(app, port):
        yield url, publisher


def _no_axe_violations(page: Page, state: str) -> None:
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    assert results.violations_count == 0, f"{state}:\n{results.generate_report()}"


def _cells(page: Page, table: str, part: str) -> list[list[str]]:
    rows = page.locator(f"#{table} {part} tr")
    return [
        [c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def _share(row: dict[str, str]) -> str:
    if not row["share_within_target_pct"]:
        return NONE
    within, total = row["closed_within_target"], row["closed_with_target"]
    return f"{row['share_within_target_pct']}% ({within} of {total})"


def _change(value: str) -> str:
    if not value:
        return NONE
    return ("+" if float(value) > 0 else "") + f"{float(value):.1f} pts"


def _duration(value: str) -> str:
    return _shown(float(value)) if value else NONE


def test_the_department_view_equals_its_csv_and_widget(
    demo_site: str, page: Page, problems: PageProblems, tmp_path: Path
) -> None:
    if datetime.now(UTC).second >= 45:  # numbers are per minute: read page and CSV in one
        time.sleep(61 - datetime.now(UTC).second)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(demo_site + "/stats/departments?period=90d")
    expect(page.locator("#dept-compare tfoot tr")).to_have_count(1)
    expect(page.locator("#dept-message")).to_have_text("")
    compare = _cells(page, "dept-compare", "tbody") + _cells(page, "dept-compare", "tfoot")
    backlog = _cells(page, "dept-backlog", "tbody") + _cells(page, "dept-backlog", "tfoot")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download these numbers (CSV)").click()
    download = info.value
    assert download.suggested_filename.startswith("departments-90d-")
    saved = tmp_path / "departments.csv"
    download.save_as(saved)
    with saved.open(encoding="utf-8", newline="") as handle:
        sheet = list(csv.DictReader(handle))

    expected_compare = [
        [
            row["rank"],
            row["department"],
            row["opened"],
            row["closed"],
            _share(row),
            _change(row["share_change_pts"]),
            _duration(row["median_close_seconds"]),
            _duration(row["p90_close_seconds"]),
            _duration(row["previous_median_close_seconds"]),
        ]
        for row in sheet
    ]
    expected_backlog = [
        [
            row["department"],
            row["open_now"],
            row["age_0_7_days"],
            row["age_8_30_days"],
            row["age_31_90_days"],
            row["age_over_90_days"],
            row["overdue_now"],
            row["dated_in_future"],
        ]
        for row in sheet
    ]
    assert compare == expected_compare
    assert backlog == expected_backlog

    # What a department head checks first: ranks in order, parts adding up to the whole.
    departments = sheet[:-1]
    assert [int(r["rank"]) for r in departments] == list(range(1, len(departments) + 1))
    assert len(departments) >= 10 and sheet[-1]["department"] == "All departments"
    for column in ("opened", "closed", "open_now", "overdue_now", "age_over_90_days"):
        assert int(sheet[-1][column]) == sum(int(r[column]) for r in departments), column
    for row in sheet:
        buckets = ("age_0_7_days", "age_8_30_days", "age_31_90_days", "age_over_90_days")
        assert int(row["open_now"]) == sum(int(row[b]) for b in buckets) + int(
            row["dated_in_future"]
        )
    expect(page.locator("#dept-due")).to_contain_text("from the city's feed")
    _no_axe_violations(page, "departments")
    page.locator("#dept-compare").scroll_into_view_if_needed()
    shot = screenshot(page, "journey-departments")
    assert shot.stat().st_size > 10_000

    # The widget for the top department says the same numbers (this month, its own site).
    top = departments[0]["department"]
    snippet = page.locator("#dept-snippet").input_value()
    assert "/embed/stats?period=90d" in snippet
    assert 'width="340" height="260"' in snippet
    page.set_viewport_size({"width": 340, "height": 260})  # the snippet's iframe size
    page.goto(demo_site + "/embed/stats?" + urlencode({"agency": top, "period": "90d"}))
    for element, column in (
        ("w-opened", "opened"),
        ("w-resolved", "closed"),
        ("w-open", "open_now"),
    ):
        expect(page.locator(f"#{element}")).to_have_text(f"{int(departments[0][column]):,}")
    expect(page.locator(".widget-foot")).to_be_in_viewport(ratio=1)  # nothing cut off
    _no_axe_violations(page, "stats widget")
    screenshot(page, "journey-departments-widget", full_page=False)
    assert problems.errors == []


def test_a_department_head_signs_up_for_the_daily_digest(
    demo_app: tuple[str, RecordingPublisher], page: Page, problems: PageProblems
) -> None:
    """From "Alert me" on the map: the digest section, a department from the list, an email;
    the confirmation is asked for, and the manage page names the digest (daily only)."""
    site, publisher = demo_app
    page.goto(site + "/")
    page.get_by_text("For a department: a daily digest of its overdue").click()
    expect(page.locator("#digest-hint")).to_contain_text("One email a day at 7:00 (city time)")
    department = page.get_by_label("Department for the digest")
    expect(department.locator("option")).not_to_have_count(1)  # the list has arrived
    page.locator("#digest-submit").click()
    expect(page.locator("#digest-message")).to_have_text("Choose the department the digest is for.")
    department.select_option(index=1)
    chosen = department.input_value()
    page.get_by_label("Email for the digest").fill("head@example.city")
    page.locator("#digest-submit").click()
    expect(page.locator("#digest-message")).to_contain_text("Check your inbox")
    (sub,) = [s for s in publisher.changed if s.target.kind == "department_digest"]
    assert (sub.target.agency, sub.delivery.value) == (chosen, "daily")  # type: ignore[union-attr]
    screenshot(page, "journey-department-digest-signup", full_page=False)

    page.goto(publisher.confirmations[-1].confirm_url)
    manage = sign_subscription_token(JOURNEY_SECRET, TokenPurpose.MANAGE, sub.subscription_id)
    page.goto(f"{site}/subscriptions/manage?token={manage}")
    card = page.locator(f"[data-subscription-id='{sub.subscription_id}']")
    expect(card).to_contain_text(
        f"Daily digest of the overdue and oldest open requests of {sub.target.agency}"  # type: ignore[union-attr]
    )
    expect(card).to_have_attribute("data-status", "active")
    expect(card.get_by_label("How often").locator("option")).to_have_text(["Daily digest"])
    assert problems.errors == []
