"""Settings from the environment, and the push endpoint's auth rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connect311_ingestor.settings import IngestorSettings, SeeClickFixFeed
from connect311_ingestor.sources.http import retry_after_seconds
from connect311_ingestor.sources.loop import next_delay
from connect311_ingestor.web import authorized


def test_settings_read_prefixed_env_with_feed_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTOR_PUSH_TOKENS", " a1 , b2,, ")
    monkeypatch.setenv(
        "INGESTOR_OPEN311_FEEDS",
        '[{"source": "sf", "base_url": "https://x/open311/v2", "format": "xml",'
        ' "jurisdiction_id": "sfgov.org", "api_key": "s3cr3t-key"}]',
    )
    settings = IngestorSettings()
    assert settings.tokens() == {"a1", "b2"}
    assert settings.open311_feeds[0].format == "xml"
    assert settings.open311_feeds[0].api_key is not None
    assert "s3cr3t-key" not in repr(settings.open311_feeds[0])
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8001)
    assert settings.database_url == "sqlite:///var/ingestor.db"


def test_no_tokens_means_push_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INGESTOR_PUSH_TOKENS", raising=False)
    assert IngestorSettings().tokens() == frozenset()


def test_seeclickfix_feed_needs_a_place_or_a_full_box() -> None:
    with pytest.raises(ValidationError, match="place_url"):
        SeeClickFixFeed(source="scf", min_lat=1.0, max_lat=2.0)
    assert SeeClickFixFeed(source="scf", place_url="st-petersburg").place_url


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer a1", True),
        ("bearer  b2", True),
        ("Bearer a1x", False),
        ("Basic a1", False),
        ("Bearer", False),
        (None, False),
    ],
)
def test_bearer_token_check(header: str | None, ok: bool) -> None:
    assert authorized(header, frozenset({"a1", "b2"})) is ok


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_poll_delay_grows_while_failing_and_is_capped() -> None:
    assert 270 <= next_delay(300, 0) <= 330
    assert 540 <= next_delay(300, 1) <= 660
    assert next_delay(300, 30) <= 3600 * 1.1


def test_seeclickfix_box_query_asks_for_details_since_the_watermark() -> None:
    from datetime import UTC, datetime

    import httpx

    from connect311_ingestor.sources.http import Fetcher
    from connect311_ingestor.sources.seeclickfix import SeeClickFixPoller

    feed = SeeClickFixFeed(source="scf", min_lat=27.6, min_lng=-82.8, max_lat=27.9, max_lng=-82.5)
    poller = SeeClickFixPoller(feed, Fetcher(httpx.AsyncClient(), max_bytes=1), ingestor=None)  # type: ignore[arg-type]
    params = poller.first_params(datetime(2024, 5, 1, 12, 30, tzinfo=UTC))
    assert params == {
        "updated_at_after": "2024-05-01T12:30:00Z",
        "details": "true",
        "per_page": "100",
        "page": "1",
        "min_lat": "27.6",
        "min_lng": "-82.8",
        "max_lat": "27.9",
        "max_lng": "-82.5",
    }
