"""The map rides out the public-read rate limit (issue 13): on a 429 it waits Retry-After
(bounded), says "Busy — retrying…", and tries once more instead of failing the view."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.web.conftest import PageProblems, screenshot
from tests.e2e.web.seed import SEEDED

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"
READS = re.compile(r".*/api/tiles/\d+/\d+/\d+\.json.*")  # the map's data, by tile (issue 15)


def _limited(times: int, retry_after: str) -> tuple[list[tuple[str, float]], object]:
    """A route handler answering the first `times` map reads with 429, then passing them."""
    seen: list[tuple[str, float]] = []

    def handle(route: Route) -> None:
        seen.append((route.request.url, time.monotonic()))
        if len(seen) <= times:
            route.fulfill(
                status=429,
                headers={"Retry-After": retry_after, "Content-Type": "application/json"},
                body='{"detail": "too many reads from here; try again in a moment"}',
            )
        else:
            route.continue_()

    return seen, handle


def test_a_rate_limited_view_waits_says_busy_and_loads(page: Page, problems: PageProblems) -> None:
    seen, handle = _limited(1, "2")
    page.route(READS, handle)  # type: ignore[arg-type]
    page.goto("/")
    expect(page.locator("#map-status")).to_have_text("Busy — retrying…")
    expect(page.locator("#map")).to_have_attribute("data-state", "busy")
    screenshot(page, "web-map-busy-retrying", full_page=False)
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED), timeout=15_000)
    expect(page.locator("#map")).to_have_attribute("data-state", "ready")
    # The view asks for its few tiles at once; the refused one was asked again, once, later.
    refused_url, refused_at = seen[0]
    again = [at for url, at in seen[1:] if url == refused_url]
    assert len(again) == 1 and again[0] - refused_at >= 1.9, "the retry waited Retry-After"
    # The browser logs every non-2xx answer as a console error; nothing else went wrong.
    assert [e for e in problems.errors if "429" not in e] == []


def test_a_second_429_fails_the_view_with_the_reason_and_a_huge_wait_is_bounded(
    page: Page,
) -> None:
    seen, handle = _limited(100, "3600")
    page.route(READS, handle)  # type: ignore[arg-type]
    started = time.monotonic()
    page.goto("/")
    expect(page.locator("#map")).to_have_attribute("data-state", "error", timeout=20_000)
    assert time.monotonic() - started < 15, "an hour-long Retry-After is cut to the bound"
    expect(page.locator("#map-status")).to_contain_text("too many reads from here")
    urls = [url for url, _ in seen]
    assert all(urls.count(url) == 2 for url in urls)  # exactly one retry of each tile
