"""SeeClickFix API v2 poller: issues by place or box, updated since the saved watermark."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from connect311_contracts.envelope import utc_now
from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.dates import parse_datetime
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.seeclickfix import parse_issues_page
from connect311_ingestor.pipeline import Ingestor, IngestSummary
from connect311_ingestor.records import Accepted, Rejected
from connect311_ingestor.settings import SeeClickFixFeed
from connect311_ingestor.sources.documents import document_reject, unusable
from connect311_ingestor.sources.http import Fetcher, TooLarge
from connect311_ingestor.sources.open311 import iso


def rejected_stamp(result: Rejected) -> datetime | None:
    """When a rejected issue last changed (its own updated_at, else created_at), if readable.

    The watermark moves past it like past an accepted issue: a record rejected for good is
    not fetched again on every poll (it is recorded once anyway), and a changed copy of it
    has a later updated_at, so it is read again.
    """
    record = result.record
    if not isinstance(record, Mapping):
        return None
    for name in ("updated_at", "created_at"):
        try:
            stamp = parse_datetime(record.get(name), field_name=name)
        except RecordError:
            continue
        if stamp is not None:
            return stamp
    return None


class SeeClickFixPoller:
    """Walks every page of issues updated after the watermark, then advances it."""

    def __init__(
        self,
        feed: SeeClickFixFeed,
        fetcher: Fetcher,
        ingestor: Ingestor,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.feed = feed
        self.fetcher = fetcher
        self.ingestor = ingestor
        self.clock = clock

    @property
    def source(self) -> str:
        """The source name this feed's requests carry."""
        return self.feed.source

    def first_params(self, updated_after: datetime) -> dict[str, str]:
        """Query parameters of the first page."""
        params = {
            "updated_at_after": iso(updated_after),
            "details": "true",
            "per_page": str(self.feed.per_page),
            "page": "1",
        }
        if self.feed.place_url:
            params["place_url"] = self.feed.place_url
        else:
            for name in ("min_lat", "min_lng", "max_lat", "max_lng"):
                params[name] = str(getattr(self.feed, name))
        return params

    async def poll_once(self) -> IngestSummary:
        """One cycle over all pages; the watermark moves to the newest update seen."""
        store = self.ingestor.store
        saved = await asyncio.to_thread(store.get_cursor, self.source)
        cursor: dict[str, Any] = saved or {}
        backfill = not cursor.get("caught_up", False)
        if "updated_after" in cursor:
            since = datetime.fromisoformat(str(cursor["updated_after"]).replace("Z", "+00:00"))
        else:
            since = self.clock() - timedelta(days=self.feed.backfill_days)
        summary, newest = await self._walk(since, None, backfill=backfill)
        done = {**cursor, "updated_after": iso(newest), "caught_up": True}
        await asyncio.to_thread(store.set_cursor, self.source, done)
        return summary

    async def backfill_window(
        self, since: datetime, until: datetime | None = None
    ) -> IngestSummary:
        """Fetch the issues updated in [since, until) once, as history (never alerted).

        The watermark is neither read nor moved: live polling carries on where it was.
        """
        summary, _ = await self._walk(since, until, backfill=True)
        return summary

    async def _walk(
        self, since: datetime, until: datetime | None, *, backfill: bool
    ) -> tuple[IngestSummary, datetime]:
        """Every page of issues updated after `since` (and before `until`), ingested page by
        page; returns the summary and the newest update seen (for the watermark).

        An unusable page (too large, not an issues document) is rejected once and stops
        the walk with FeedUnusable: what came before it is stored, nothing after is skipped.
        """
        self.ingestor.exclude(self.source, self.feed.exclusion())
        newest = since
        summary = IngestSummary()
        url: str | None = f"{self.feed.base_url.rstrip('/')}/issues"
        first = self.first_params(since)
        if until is not None:
            first["updated_at_before"] = iso(until)
        params: dict[str, str] | None = first
        for number in range(1, self.feed.max_pages + 1):
            if url is None:
                break
            where = f"{url} page {number}"
            try:
                body = await self.fetcher.get(url, params)
            except TooLarge as exc:
                reject = Rejected(RejectReason.TOO_LARGE, str(exc), url, where)
                await self.ingestor.ingest([reject], source=self.source)
                raise unusable(reject) from exc
            page = parse_issues_page(
                body, source=self.source, dataset=self.feed.dataset, location=where
            )
            if (bad := document_reject(page.results, where)) is not None:
                await self.ingestor.ingest([bad], source=self.source)
                raise unusable(bad)
            for result in page.results:
                if isinstance(result, Accepted):
                    seen = result.request.updated_datetime or result.request.requested_datetime
                    newest = max(newest, seen)
                elif (stamp := rejected_stamp(result)) is not None:
                    # Rejected for good: not re-fetched each poll (never past our own clock).
                    newest = max(newest, min(stamp, self.clock()))
            batch = list(page.results)
            summary.add(
                (await self.ingestor.ingest(batch, source=self.source, backfill=backfill))[0]
            )
            url, params = page.next_page_url, None
        return summary, newest
