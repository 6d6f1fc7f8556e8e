"""The matcher process: subscriptions in, request events in, notification commands out.

Its clients come built from `connect311_matcher.app` (the composition root). Every instance
reads all of the compacted subscriptions topic from the beginning (no group), knows it has
caught up from the fetch high-water mark, builds its cover grid, and only then joins the
request-events consumer group. Offsets of request events are committed only after the broker
has acknowledged every notification for them.

A broker watch notices when the broker lost what it held (a memory-only local broker that
restarted): the matcher then drops every subscription it held and reads the topic again from
the beginning, where the map API re-publishes the subscriptions that still exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import Gauge

from connect311_bus.broker_watch import BrokerState
from connect311_bus.consume import Batch, ConsumeLoop, DeadLetters
from connect311_bus.kafka import (
    UndecodableMessage,
    consumer_lag,
    decode,
    trace_headers,
)
from connect311_bus.logs import header_trace_id, kafka_context, log_context
from connect311_bus.rewind import Rewind
from connect311_contracts.events import REQUEST_EVENT_ADAPTER, RequestEvent
from connect311_contracts.subscriptions import SUBSCRIPTION_CHANGED_ADAPTER
from connect311_matcher.clients import SERVICE, MatcherClients
from connect311_matcher.commands import encoded_commands
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.metrics import MatcherMetrics
from connect311_matcher.settings import MatcherSettings
from connect311_matcher.targets import UnusableGeometry

log = logging.getLogger(__name__)


async def report_lag(kafka_consumer: AIOKafkaConsumer, topic: str, gauge: Gauge) -> None:
    """Set the topic's lag gauge from the consumer's positions and high-water marks."""
    gauge.labels(topic).set(await consumer_lag(kafka_consumer))


class Matcher:
    """One matcher instance; `run()` until `stop()`."""

    def __init__(
        self,
        settings: MatcherSettings,
        clients: MatcherClients,
        metrics: MatcherMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._clients = clients
        self.metrics = metrics or MatcherMetrics()
        self.index = SubscriptionIndex(
            cell_m=self.settings.cell_m, min_delta=self.settings.rebuild_min_delta
        )
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._batch_lock = asyncio.Lock()
        self._rebuild: asyncio.Task[None] | None = None
        self._producer = clients.producer
        self._reread = asyncio.Event()
        self._rewind = Rewind(self.settings.events_topic)
        self.broker_state = BrokerState.OK

    def stop(self) -> None:
        """Ask the instance to finish its batch, commit, leave the group and return."""
        self._stop.set()

    async def run(self) -> None:
        """Catch up on subscriptions, then match request events until stopped."""
        await self._producer.start()
        subs = self._clients.subscriptions
        await subs.start()
        try:
            tps = await self._assign_all(subs)
            await self._catch_up(subs, tps)
            watch = asyncio.create_task(self._watch_broker())
            follower = asyncio.create_task(self._follow_subscriptions(subs))
            # Matching on stale subscriptions would be silent harm: if following them fails,
            # stop (the batch in flight is finished and committed) and report it.
            follower.add_done_callback(lambda _: self._stop.set())
            try:
                await self._consume_events()
            finally:
                watch.cancel()
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower  # re-raises what stopped it, if anything did
        finally:
            if self._rebuild is not None:
                self._rebuild.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._rebuild
            await subs.stop()
            await self._producer.stop()
            self.metrics.ready.set(0)

    # ---- subscriptions ---------------------------------------------------------------------

    async def _assign_all(self, subs: AIOKafkaConsumer) -> list[TopicPartition]:
        await subs.topics()  # refreshes metadata so the partitions are known
        partitions = subs.partitions_for_topic(self.settings.subscriptions_topic) or set()
        topic = self.settings.subscriptions_topic
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        subs.assign(tps)
        await subs.seek_to_beginning(*tps)
        return tps

    async def _catch_up(self, subs: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Apply every subscription up to the high-water mark, then build the grid."""
        started = time.monotonic()
        self.index.bulk_loading = True
        while not self._stop.is_set():
            batch = await subs.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                await self._apply_subscriptions(records)
            await report_lag(subs, self.settings.subscriptions_topic, self.metrics.consumer_lag)
            # end_offsets() lies on the local broker; the fetch high-water mark does not.
            if await self._caught_up(subs, tps):
                break
        await self._build_and_install()
        # What is held now (every subscription's objects) lives on: keep it out of the
        # collector's full passes, which otherwise walk all of it while an event's thousands
        # of commands are made (a third of the matching time at 100k in bench/matcher.py).
        gc.collect()
        gc.freeze()
        self._publish_sizes()
        self.ready.set()
        self.metrics.ready.set(1)
        log.info(
            "caught up on %d subscriptions in %.1f s; matching",
            len(self.index),
            time.monotonic() - started,
        )

    @staticmethod
    async def _caught_up(subs: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
        for tp in tps:
            high = subs.highwater(tp)
            if high is None or await subs.position(tp) < high:
                return False
        return True

    async def _watch_broker(self) -> None:
        """Check the broker; after it lost its topics, have the subscriptions read again."""
        watch = self._clients.watch(self._reread_subscriptions)
        while True:  # the first check, right after catch-up, learns which cluster this is
            try:
                self.broker_state = await watch.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. topics not re-created yet: the next check tries again
                log.exception("checking the broker failed; retrying")
            await asyncio.sleep(self.settings.broker_check_s)

    async def _reread_subscriptions(self) -> None:
        self.metrics.broker_recoveries.inc()
        self._reread.set()
        self._rewind.request()

    async def _start_over(self, subs: AIOKafkaConsumer) -> None:
        """Forget every subscription held and read the (re-published) topic from the start."""
        log.warning("the broker lost the subscriptions; reading them again from the start")
        async with self._batch_lock:  # no event is matched against a half-cleared index
            if self._rebuild is not None:
                self._rebuild.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._rebuild
            self.index = SubscriptionIndex(
                cell_m=self.settings.cell_m, min_delta=self.settings.rebuild_min_delta
            )
            self._reread.clear()
            self.ready.clear()  # /healthz says 503 until the subscriptions are caught up again
            self.metrics.ready.set(0)
            await self._catch_up(subs, await self._assign_all(subs))

    async def _follow_subscriptions(self, subs: AIOKafkaConsumer) -> None:
        """Apply later subscription changes live; rebuild the grid off the matching path."""
        while True:
            if self._reread.is_set():
                await self._start_over(subs)
            batch = await subs.getmany(timeout_ms=500, max_records=5_000)
            for records in batch.values():
                await self._apply_subscriptions(records)
            if batch:
                self._publish_sizes()
            await report_lag(subs, self.settings.subscriptions_topic, self.metrics.consumer_lag)
            if self.index.rebuild_due() and self._rebuild is None:
                self._rebuild = asyncio.create_task(self._rebuild_grid())

    async def _rebuild_grid(self) -> None:
        try:
            await self._build_and_install()
            self.metrics.grid_rebuilds.inc()
            self._publish_sizes()
        finally:
            self._rebuild = None

    async def _build_and_install(self) -> None:
        index = self.index
        batch, half, upto = index.grid_input()
        started = time.monotonic()
        grid = await asyncio.to_thread(index.build_grid, batch, half)
        index.install_grid(grid, batch, upto)
        log.info(
            "cover grid of %d circles built in %.1f s", len(batch.slots), time.monotonic() - started
        )

    async def _apply_subscriptions(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            reason = self._apply_one(record)
            self.metrics.subscription_changes.inc()
            if reason is not None:
                await self._dead_letter(record, reason)

    def _apply_one(self, record: ConsumerRecord[bytes, bytes]) -> str | None:
        """Apply one subscriptions record; the reason it is unusable, if it is."""
        key = record.key.decode(errors="replace") if record.key else None
        if record.value is None:  # tombstone: the subscription was deleted
            if key is not None:
                self.index.remove(key)
            return None if key is not None else "tombstone without a key"
        try:
            changed = decode(SUBSCRIPTION_CHANGED_ADAPTER, record.value)
        except UndecodableMessage as exc:
            return str(exc)
        sub = changed.subscription
        if key is not None and key != sub.subscription_id:
            return f"key {key!r} differs from subscription_id {sub.subscription_id!r}"
        try:
            self.index.upsert(sub)
        except UnusableGeometry as exc:
            self.index.remove(sub.subscription_id)
            return str(exc)
        except Exception as exc:  # a bug must not stop every other subscription from loading
            log.exception("could not index subscription %s", sub.subscription_id)
            self.index.remove(sub.subscription_id)
            return f"matcher error: {exc!r}"
        return None

    def _publish_sizes(self) -> None:
        counts = self.index.counts()
        for kind, n in counts.items():
            self.metrics.subscriptions.labels(kind).set(n)
        held = max(1, len(self.index))
        self.metrics.bytes_per_subscription.set(self.index.index_bytes() / held)

    # ---- request events --------------------------------------------------------------------

    async def _consume_events(self) -> None:
        events = self._clients.events
        loop = ConsumeLoop(
            events,
            self.settings.events_topic,
            self._process,
            self.metrics.consumer_lag,
            max_records=self.settings.max_batch,
            rewind=self._rewind,  # re-match what the broker's new log holds
            batch_lock=self._batch_lock,  # no event is matched against a half-cleared index
        )
        loop.subscribe()
        await events.start()
        try:
            await loop.run(self._stop)
        finally:
            await events.stop()  # leaves the group so the others take over at once

    async def _process(self, batch: Batch) -> None:
        """Match a batch and wait for the broker to ack every notification (then: commit)."""
        pending: list[asyncio.Future[object]] = []
        for record in batch:
            pending += await self._match_record(record)
        await asyncio.gather(*pending)

    async def _match_record(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> list[asyncio.Future[object]]:
        with log_context(**kafka_context(record)):
            return await self._match_in_context(record)

    async def _match_in_context(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> list[asyncio.Future[object]]:
        assert self._producer is not None
        try:
            event: RequestEvent = decode(REQUEST_EVENT_ADAPTER, record.value)
        except UndecodableMessage as exc:
            self.metrics.events_in.labels("dead_lettered").inc()
            await self._dead_letter(record, str(exc))
            return []
        # The header is the carrier; an event from an older producer may only have the field.
        trace_id = event.trace_id or header_trace_id(record.headers)
        with log_context(event_id=event.event_id, trace_id=trace_id):
            return await self._send_matches(record, event, trace_id)

    async def _send_matches(
        self, record: ConsumerRecord[bytes, bytes], event: RequestEvent, trace_id: str | None
    ) -> list[asyncio.Future[object]]:
        assert self._producer is not None
        started = time.perf_counter()
        try:
            commands = encoded_commands(self.index, event)
        except Exception as exc:  # one event must not halt its partition: keep it for an operator
            log.exception("matching failed for %s", event.request.service_request_id)
            self.metrics.events_in.labels("dead_lettered").inc()
            await self._dead_letter(record, f"matcher error: {exc!r}")
            return []
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.events_in.labels("backfill" if event.backfill else "matched").inc()
        kinds = Counter(kind for command in commands for kind in command.kinds)
        # Only events that reach someone at INFO: most events match no one.
        log.log(
            logging.INFO if commands else logging.DEBUG,
            "%s for request %s matched %d subscription(s), sent as %d command(s)",
            event.event_type,
            event.request.service_request_id,
            kinds.total(),
            len(commands),
        )
        futures = []
        topic = self.settings.notifications_topic
        headers = trace_headers(trace_id)  # every command carries the event's trace id
        for command in commands:
            futures.append(
                await self._producer.send(topic, command.value, key=command.key, headers=headers)
            )
        for kind, count in kinds.items():  # counted once per kind, not once per match
            self.metrics.matches_out.labels(kind).inc(count)
        return futures

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        assert self._producer is not None
        await DeadLetters.via(SERVICE, self._producer).send(record, reason)
        self.metrics.dead_letters.labels(record.topic).inc()
