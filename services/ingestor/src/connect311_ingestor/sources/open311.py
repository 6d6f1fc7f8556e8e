"""Open311 GeoReport v2 poller: requests by date windows from a saved watermark, and updates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connect311_contracts.envelope import utc_now
from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import ServiceRequest
from connect311_ingestor.parsers.open311 import parse_requests
from connect311_ingestor.parsers.open311_document import FeedError
from connect311_ingestor.parsers.open311_services import parse_services
from connect311_ingestor.parsers.open311_updates import parse_updates
from connect311_ingestor.pipeline import Ingestor, IngestSummary
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.settings import Open311Feed
from connect311_ingestor.sources.documents import document_reject, unusable
from connect311_ingestor.sources.http import Fetcher, FetchError, TooLarge
from connect311_ingestor.updates import UpdateLike

log = logging.getLogger(__name__)


def iso(moment: datetime) -> str:
    """A GeoReport date parameter (ISO 8601, UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def windows(start: datetime, end: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    """Consecutive [start, end) windows of at most `span` covering start..end."""
    out: list[tuple[datetime, datetime]] = []
    while start < end:
        out.append((start, min(start + span, end)))
        start = out[-1][1]
    return out


def with_service_names(request: ServiceRequest, names: dict[str, str]) -> ServiceRequest:
    """Fill a missing service_name from the services list."""
    if request.service_name or not request.service_code or request.service_code not in names:
        return request
    return request.model_copy(update={"service_name": names[request.service_code]})


class Open311Poller:
    """Polls one GeoReport v2 endpoint; the watermark advances only after a window is stored."""

    def __init__(
        self,
        feed: Open311Feed,
        fetcher: Fetcher,
        ingestor: Ingestor,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.feed = feed
        self.fetcher = fetcher
        self.ingestor = ingestor
        self.clock = clock
        self.service_names: dict[str, str] | None = None

    @property
    def source(self) -> str:
        """The source name this feed's requests carry."""
        return self.feed.source

    def _url(self, resource: str) -> str:
        return f"{self.feed.base_url.rstrip('/')}/{resource}.{self.feed.format}"

    def _params(self, **extra: str) -> dict[str, str]:
        params = dict(extra)
        if self.feed.jurisdiction_id:
            params["jurisdiction_id"] = self.feed.jurisdiction_id
        if self.feed.api_key:
            params["api_key"] = self.feed.api_key.get_secret_value()
        return params

    async def poll_once(self) -> IngestSummary:
        """One cycle: services (once), then every window from the watermark up to now."""
        self.ingestor.exclude(self.source, self.feed.exclusion())
        store = self.ingestor.store
        saved = await asyncio.to_thread(store.get_cursor, self.source)
        cursor: dict[str, Any] = saved or {}
        backfill = not cursor.get("caught_up", False)
        now = self.clock()
        summary = IngestSummary()
        if self.service_names is None:
            self.service_names = await self._services()  # None again after a failure
        span = timedelta(hours=self.feed.window_hours)
        for start, end in windows(self._resume(cursor, "requests_until", now), now, span):
            summary.add(await self._requests_window(start, end, backfill))
            cursor["requests_until"] = iso(end)
            await asyncio.to_thread(store.set_cursor, self.source, dict(cursor))
        if self.feed.updates:
            for start, end in windows(self._resume(cursor, "updates_until", now), now, span):
                summary.add(await self._updates_window(start, end, backfill))
                cursor["updates_until"] = iso(end)
                await asyncio.to_thread(store.set_cursor, self.source, dict(cursor))
        cursor["caught_up"] = True
        await asyncio.to_thread(store.set_cursor, self.source, dict(cursor))
        return summary

    def _resume(self, cursor: dict[str, Any], key: str, now: datetime) -> datetime:
        if key not in cursor:
            return now - timedelta(days=self.feed.backfill_days)
        saved = datetime.fromisoformat(str(cursor[key]).replace("Z", "+00:00"))
        # Re-read a little: late arrivals land in the past; change detection drops repeats.
        return saved - timedelta(minutes=self.feed.overlap_minutes)

    async def _services(self) -> dict[str, str] | None:
        """Service names by code; None when the list failed (requests still flow, unnamed).

        The list is only a nicety: an error here (HTTP 404/500, a timeout, a bad document)
        is counted and logged once per poll, and the next poll asks again.
        """
        url = self._url("services")
        try:
            body = await self.fetcher.get(url, self._params())
            services = parse_services(body, fmt=self.feed.format)
        except (FeedError, FetchError) as exc:  # FetchError covers TooLarge and HTTP errors
            self.ingestor.metrics.auxiliary_failures.labels(self.source, "services").inc()
            log.warning(
                "%s: services list failed (%s); ingesting requests without service names, "
                "retried next poll",
                url,
                exc,
            )
            return None
        return {s.service_code: s.service_name for s in services if s.service_name}

    async def _requests_window(
        self, start: datetime, end: datetime, backfill: bool
    ) -> IngestSummary:
        url = self._url("requests")
        summary = IngestSummary()
        previous_ids: list[str] | None = None
        for page in range(1, self.feed.max_pages + 1):
            params = self._params(start_date=iso(start), end_date=iso(end))
            if self.feed.use_page:
                params["page"] = str(page)
            where = f"{url} {iso(start)}..{iso(end)} page {page}"
            results = await self._fetch_requests(url, params, where)
            ids = [r.request.service_request_id for r in results if isinstance(r, Accepted)]
            if ids and ids == previous_ids:
                break  # the server ignores `page` and repeats itself
            results = [self._named(r) for r in results]
            summary.add(
                (await self.ingestor.ingest(results, source=self.source, backfill=backfill))[0]
            )
            if (reject := document_reject(results, where)) is not None:
                raise unusable(reject)
            if not self.feed.use_page or not ids:
                break
            previous_ids = ids
        return summary

    async def _fetch_requests(
        self, url: str, params: dict[str, str], where: str
    ) -> Sequence[ParseResult]:
        try:
            body = await self.fetcher.get(url, params)
        except TooLarge as exc:
            return [Rejected(RejectReason.TOO_LARGE, str(exc), url, where)]
        return parse_requests(
            body,
            source=self.source,
            fmt=self.feed.format,
            dataset=self.feed.dataset,
            location=where,
        )

    def _named(self, result: ParseResult) -> ParseResult:
        if isinstance(result, Accepted) and self.service_names:
            return Accepted(with_service_names(result.request, self.service_names), result.location)
        return result

    async def _updates_window(
        self, start: datetime, end: datetime, backfill: bool
    ) -> IngestSummary:
        url = self._url("servicerequestupdates")
        params = self._params(start_date=iso(start), end_date=iso(end))
        where = f"{url} {iso(start)}..{iso(end)}"
        try:
            body = await self.fetcher.get(url, params)
        except TooLarge as exc:
            body = None
            updates: list[UpdateLike | Rejected] = [
                Rejected(RejectReason.TOO_LARGE, str(exc), url, where)
            ]
        if body is not None:
            updates = list(
                parse_updates(body, source=self.source, fmt=self.feed.format, location=where)
            )
        if (reject := document_reject(updates, where)) is not None:
            await self.ingestor.ingest([reject], source=self.source)
            raise unusable(reject)
        return await self.ingestor.ingest_updates(
            updates, source=self.source, backfill=backfill, location=where
        )

    async def backfill_window(
        self, since: datetime, until: datetime | None = None
    ) -> IngestSummary:
        """Fetch [since, until) once as history (events marked backfill, never alerted).

        The watermark is neither read nor moved: live polling carries on where it was, and
        change detection drops whatever the window repeats.
        """
        until = until or self.clock()
        self.ingestor.exclude(self.source, self.feed.exclusion())
        if self.service_names is None:
            self.service_names = await self._services()
        span = timedelta(hours=self.feed.window_hours)
        summary = IngestSummary()
        for start, end in windows(since, until, span):
            summary.add(await self._requests_window(start, end, True))
        if self.feed.updates:
            for start, end in windows(since, until, span):
                summary.add(await self._updates_window(start, end, True))
        return summary
