"""The department digest schedule: once per digest day, each department digest subscription
gets a `DepartmentDigestRequested` command on notifications.v1 (the I/O edge; the rules are
in core/department_digest.py).

Every replica runs it. A digest is recorded in `department_digests` after the broker
acknowledged it, and its event id is derived from (subscription, day): two replicas, or a
crash between the acknowledgement and the record, publish the same id again and the
notifier's ledger sends one email. A day the map API was down for is not sent later; the
day it comes back is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from connect311_contracts.digests import DepartmentDigestRequested, digest_event_id
from connect311_contracts.service_levels import ServiceLevels, ServiceLevelsError, load
from connect311_contracts.subscriptions import (
    Delivery,
    DepartmentDigestTarget,
    Subscription,
    SubscriptionStatus,
)
from connect311_map_api.core.department_digest import digest_content, digest_day
from connect311_map_api.db import subscription_store
from connect311_map_api.db.department_queries import open_requests
from connect311_map_api.db.tables import department_digests, subscriptions
from connect311_map_api.publisher import Publisher
from connect311_map_api.settings import MapApiSettings

__all__ = ["DepartmentDigests"]

log = logging.getLogger(__name__)


class DepartmentDigests:
    """Looks at the schedule every `department_digest_check_s` and sends what is owed."""

    def __init__(
        self,
        engine: Engine,
        publisher: Publisher,
        settings: MapApiSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.settings = settings
        self.clock = clock
        self.tz = ZoneInfo(settings.display_timezone)

    async def run(self) -> None:
        """Forever (cancelled at shutdown); a failed round is logged and tried again."""
        while True:
            try:
                await self.send_owed()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("department digests failed this round; trying again")
            await asyncio.sleep(self.settings.department_digest_check_s)

    async def send_owed(self) -> int:
        """Publish every digest owed now (then record it); how many were published."""
        now = self.clock()
        day = digest_day(now, self.tz, self.settings.department_digest_hour)
        owed = await asyncio.to_thread(self._owed, day)
        sent = 0
        for sub in owed:
            command = await asyncio.to_thread(self._command, sub, day, now)
            await self.publisher.department_digest(command)  # raises: tried next round
            await asyncio.to_thread(self._record, sub.subscription_id, day, now)
            sent += 1
        if sent:
            log.info("published %d department digest(s) for %s", sent, day.isoformat())
        return sent

    def _owed(self, day: date) -> list[Subscription]:
        s = subscriptions.c
        with self.engine.connect() as conn:
            done = set(
                conn.execute(
                    select(department_digests.c.subscription_id).where(
                        department_digests.c.day == day.isoformat()
                    )
                ).scalars()
            )
            rows = conn.execute(
                select(subscriptions).where(
                    s.status == SubscriptionStatus.ACTIVE.value,
                    s.delivery == Delivery.DAILY.value,
                    # Checked every minute: only digests are read and parsed, not every
                    # daily area alert of the city.
                    s.target["kind"].as_string() == "department_digest",
                )
            )
            active = [subscription_store.from_row(row) for row in rows]
        return [
            sub
            for sub in active
            if isinstance(sub.target, DepartmentDigestTarget) and sub.subscription_id not in done
        ]

    def _levels(self) -> ServiceLevels:
        zone = self.settings.display_timezone
        try:
            return load(self.settings.service_levels_file, zone)
        except ServiceLevelsError as exc:  # the feed's own dates still count
            log.warning("service levels unusable, feed due dates only: %s", exc)
            return ServiceLevels(zone=ZoneInfo(zone))

    def _command(self, sub: Subscription, day: date, now: datetime) -> DepartmentDigestRequested:
        assert isinstance(sub.target, DepartmentDigestTarget)
        agency = sub.target.agency
        naive = now.astimezone(UTC).replace(tzinfo=None)
        with self.engine.connect() as conn:
            content = digest_content(
                open_requests(conn, agency),
                self._levels(),
                naive,
                self.settings.department_digest_items,
            )
        return DepartmentDigestRequested(
            event_id=digest_event_id(sub.subscription_id, day),
            # Allow-list: the label is the person's own words, never needed by the digest.
            subscription=sub.model_copy(update={"label": None}),
            agency=agency,
            day=day,
            as_of=now.astimezone(UTC),
            open_count=content.open_count,
            overdue_count=content.overdue_count,
            overdue=content.overdue,
            oldest_open=content.oldest_open,
        )

    def _record(self, subscription_id: str, day: date, now: datetime) -> None:
        row = {
            "subscription_id": subscription_id,
            "day": day.isoformat(),
            "published_at": now.astimezone(UTC).replace(tzinfo=None),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(department_digests.insert(), row)
        except IntegrityError:
            pass  # another replica recorded it first: the notifier keeps one of the two
