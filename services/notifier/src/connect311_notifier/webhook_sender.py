"""The webhook loop: drains the outbox's webhook rows as signed POSTs, with the email's guarantees.

A loop of its own, beside the email sender, so SMTP's outage pauses and pacing never hold a
webhook (nor a slow receiver an email). The rows go through the same states as an email:
'sending' is committed before the POST and 'sent' after a 2xx, so a crash in between sends
it again with the same `webhook-id` (the receiver's de-duplication key): once in effect.
A claimed batch is spread over `webhook_connections` parallel lanes by subscription, each
subscription's webhooks in queue order, a retry holding back only that subscription's.

Per attempt: the URL is checked and pinned again (webhook_client), a standard-format URL
first passes the verification handshake (once per URL and secret version), and the
outcome is judged (webhook_outcome): retried with back-off, or dead-lettered after the last
try. Failed attempts in a row are counted per subscription; at `webhook_disable_after`, or
on a 410 Gone, the webhook is turned off: SubscriptionBounced(channel="webhook") tells the
map API, and its owner gets an email (queued in the same commit as the turning off).

The first time a URL and secret version is seen to work (a standard webhook's handshake, a
Slack or Teams webhook's first delivered alert), WebhookVerified tells the map API, so the
manage page can say so: published, then recorded as verified, so a crash in between (or
a publish Kafka refused) publishes it again at the next check; the map API keeps the latest.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer

from connect311_bus.kafka import encode as encode_message
from connect311_bus.logs import log_context
from connect311_contracts.notifications import NotificationDeadLettered, SubscriberMatched
from connect311_contracts.subscriptions import SubscriptionBounced, WebhookVerified
from connect311_contracts.topics import NOTIFICATIONS_DEAD, SUBSCRIPTION_FEEDBACK
from connect311_contracts.webhooks import (
    WebhookChannel,
    WebhookFormat,
    signing_secrets,
    url_key,
)
from connect311_notifier.i18n import language
from connect311_notifier.leases import Leases
from connect311_notifier.ledger import ClaimedEmail, HookState, Ledger
from connect311_notifier.links import LinkBuilder
from connect311_notifier.metrics import Metrics
from connect311_notifier.outcome import DEAD_LETTER_RETRY_S, Outcome, RetryLimits, Step
from connect311_notifier.policy import Channel
from connect311_notifier.sender import lane, sleep_until_due
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.webhook_client import WebhookClient
from connect311_notifier.webhook_outcome import HookResult, judge_hook
from connect311_notifier.webhook_payload import Shape, body, encode, verification_payload

__all__ = ["WebhookSender"]

log = logging.getLogger(__name__)
CLAIM_BATCH = 50


def _key(row: ClaimedEmail) -> str | None:
    """The URL key of a webhook row's channel (None for a row that is not usable)."""
    command = row.commands[0] if len(row.commands) == 1 else None
    if isinstance(command, SubscriberMatched) and command.subscription.webhook is not None:
        return url_key(command.subscription.webhook)
    return None


class WebhookSender:
    """Claims due webhooks, delivers them, records each outcome with the webhook's state."""

    def __init__(
        self,
        settings: NotifierSettings,
        ledger: Ledger,
        client: WebhookClient,
        links: LinkBuilder,
        producer: AIOKafkaProducer,
        metrics: Metrics,
        server_key: str,
        on_email: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.client = client
        self.links = links
        self.producer = producer
        self.metrics = metrics
        self.server_key = server_key
        self.on_email = on_email  # wakes the email sender for an owner's turned-off email
        self.tz = ZoneInfo(settings.display_timezone)
        self.wake = asyncio.Event()
        self.limits = RetryLimits(
            settings.max_attempts, settings.retry_base_s, settings.retry_max_s
        )
        self.leases = Leases(ledger, settings, metrics, Channel.WEBHOOK, self.wake)
        # The claimed batch's webhook states, read at once and kept up to date by each step
        # (a subscription's rows are all in one lane, one at a time: nobody else changes them).
        self._known: dict[tuple[str, str], HookState] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; the webhooks in flight are finished and recorded."""
        await self.leases.run(stop, self._send_until)

    async def _send_until(self, stop: asyncio.Event) -> None:
        lanes = self.settings.webhook_connections
        while not stop.is_set():
            self.wake.clear()  # before looking: a row recorded after this always wakes us
            batch = await asyncio.to_thread(
                self.ledger.claim,
                self.settings.instance_id,
                time.time(),
                CLAIM_BATCH,
                Channel.WEBHOOK,
            )
            if not batch:
                await self._idle(stop)
                continue
            wanted = [(row.subscription_id, key) for row in batch if (key := _key(row))]
            self._known = await asyncio.to_thread(self.ledger.webhooks.states, wanted)
            groups: list[list[ClaimedEmail]] = [[] for _ in range(lanes)]
            for row in batch:
                groups[lane(row, lanes)].append(row)
            async with asyncio.TaskGroup() as group:
                for rows in groups:
                    if rows:
                        group.create_task(self._drain(rows, stop))

    async def _drain(self, rows: list[ClaimedEmail], stop: asyncio.Event) -> None:
        """One lane's webhooks in order; a subscription's later ones wait behind its retry."""
        waiting: set[str] = set()
        held: list[int] = []
        try:
            for index, row in enumerate(rows):
                if stop.is_set():
                    held += [r.id for r in rows[index:]]
                    return
                if row.recipient_key in waiting:
                    held.append(row.id)
                    continue
                if not await self.deliver(row):
                    waiting.add(row.recipient_key)
        finally:
            if held:
                await asyncio.shield(asyncio.to_thread(self.ledger.release, held))

    async def _idle(self, stop: asyncio.Event) -> None:
        due = await asyncio.to_thread(self.ledger.next_due, Channel.WEBHOOK)
        await sleep_until_due(due, self.settings.digest_check_s, stop, self.wake)

    async def deliver(self, row: ClaimedEmail) -> bool:
        """One attempt for one webhook, recorded before the next; True when it is finished
        (delivered or given up on), False when it waits for a retry."""
        first = row.commands[0] if row.commands else None
        trace = first.trace_id if first else None
        with log_context(event_id=first.event_id if first else None, trace_id=trace):
            return await self._deliver(row)

    async def _deliver(self, row: ClaimedEmail) -> bool:
        command = row.commands[0] if len(row.commands) == 1 else None
        if not isinstance(command, SubscriberMatched) or command.subscription.webhook is None:
            return await self._give_up(row, "no webhook in the command", "unusable")
        channel = command.subscription.webhook
        key = url_key(channel)
        state = self._known.get((row.subscription_id, key))
        if state is None:  # delivered outside the loop's batches
            state = await asyncio.to_thread(self.ledger.webhooks.state, row.subscription_id, key)
        if state.disabled or not channel.enabled:
            return await self._give_up(row, "the webhook is turned off", "webhook_disabled")
        try:
            lang = language(command.subscription.language)
            links = self.links.in_language(lang.code)
            payload = body(Shape(channel.format.value), command, links, self.tz, lang)
            keys = signing_secrets(self.server_key, row.subscription_id, channel, datetime.now(UTC))
        except Exception as exc:  # a bug or impossible data: keep it visible, move on
            log.exception("could not build webhook %d", row.id)
            return await self._give_up(row, f"payload failed: {exc}", "unusable")
        await asyncio.to_thread(self.ledger.mark_sending, row.id, time.time())
        result, verified = await self._attempt(row, channel, key, state, payload, keys)
        verdict = judge_hook(result, row.attempts, self.limits, random.random())
        if verdict.step is Step.SENT and not verified:  # a chat app's check: its first alert
            verified = await self._verified(row, channel, key)
        now = time.time()
        failures = 0 if verdict.step is Step.SENT else state.failures + 1
        off = verdict.disable or failures >= self.settings.webhook_disable_after
        self._known[(row.subscription_id, key)] = HookState(verified, failures, off)
        if verdict.step is Step.SENT:
            await asyncio.to_thread(self.ledger.webhooks.sent, row, key, now)
            self.metrics.webhooks_sent.labels(channel.format.value).inc()
            self.metrics.latency.labels("webhook").observe(max(0.0, now - row.source_ts))
            log.info("delivered webhook %d for subscription %s", row.id, row.subscription_id)
            return True
        self.metrics.webhooks_failed.labels(result.kind).inc()
        if off:
            why = "gone" if verdict.disable else "failing"
            return await self._turn_off(row, key, verdict.result, failures, why)
        if verdict.step is Step.RETRY:
            delay = verdict.retry_in_s
            log.info("webhook %d: %s; retry in %.1f s", row.id, result.reason, delay)
            await asyncio.to_thread(
                self.ledger.webhooks.failed, row, key, result.reason, failures, now, now + delay
            )
            self.metrics.webhook_retries.inc()
            return False
        if not await self._dead_letter(row, verdict.result.reason):
            return False
        await asyncio.to_thread(
            self.ledger.webhooks.failed, row, key, verdict.result.reason, failures, now, None
        )
        self.metrics.dead_letters.labels(NOTIFICATIONS_DEAD.name, "webhook_gave_up").inc()
        return True

    async def _attempt(
        self,
        row: ClaimedEmail,
        channel: WebhookChannel,
        key: str,
        state: HookState,
        payload: bytes,
        keys: list[str],
    ) -> tuple[HookResult, bool]:
        """The POST, after the handshake when this URL and secret are not verified yet;
        and whether they are recorded as verified now.

        Slack and Teams answer their own way (they cannot echo a challenge), so only our
        standard format is verified before its first alert; their URLs are the apps' own,
        and their first delivered alert is their check (see _deliver).
        """
        if channel.format is WebhookFormat.STANDARD and not state.verified:
            challenge = secrets.token_urlsafe(24)
            occurred = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            hello = encode(verification_payload(row.subscription_id, challenge, occurred))
            hello_id = f"msg_verify_{uuid.uuid4().hex}"
            result = await self.client.deliver(
                channel.url, hello_id, hello, keys, challenge=challenge
            )
            passed = result.outcome is Outcome.SENT
            self.metrics.webhook_verifications.labels("verified" if passed else result.kind).inc()
            if not passed:
                return result, False
            # Delivered even when the news of it did not reach Kafka: the check passed.
            recorded = await self._verified(row, channel, key)
            sent = await self.client.deliver(channel.url, row.message_id, payload, keys)
            return sent, recorded
        return await self.client.deliver(channel.url, row.message_id, payload, keys), (
            state.verified
        )

    async def _verified(self, row: ClaimedEmail, channel: WebhookChannel, key: str) -> bool:
        """This URL and secret work: WebhookVerified published, then recorded. False when
        Kafka did not take it: not recorded, so the next check publishes it again (the
        alert itself is not held back for it)."""
        event = WebhookVerified(
            subscription_id=row.subscription_id, secret_version=channel.secret_version
        )
        try:
            await self.producer.send_and_wait(
                SUBSCRIPTION_FEEDBACK.name,
                encode_message(event),
                key=row.subscription_id.encode(),
            )
        except Exception as exc:  # Kafka unavailable: checked again, and told, next time
            log.warning("could not publish that webhook %d was verified: %s", row.id, exc)
            return False
        await asyncio.to_thread(
            self.ledger.webhooks.verified, row.subscription_id, key, time.time()
        )
        return True

    async def _dead_letter(self, row: ClaimedEmail, reason: str) -> bool:
        """Publish the dead letter first, then record: a crash between repeats it. False
        when Kafka did not take it: the webhook waits for another try."""
        letter = NotificationDeadLettered(
            email_kind=row.kind.value,
            subscription_id=row.subscription_id,
            reason=reason[:2000],
            attempts=row.attempts + 1,
            commands=row.commands,
        )
        return await self._publish(row, NOTIFICATIONS_DEAD.name, letter, row.recipient_key)

    async def _publish(
        self,
        row: ClaimedEmail,
        topic: str,
        message: NotificationDeadLettered | SubscriptionBounced,
        key: str,
    ) -> bool:
        """Publish a step's message; False when Kafka did not take it (the row is retried)."""
        try:
            await self.producer.send_and_wait(topic, encode_message(message), key=key.encode())
        except Exception as exc:  # Kafka unavailable: keep the row, try the whole step later
            log.warning("could not publish to %s for webhook %d: %s", topic, row.id, exc)
            await asyncio.to_thread(
                self.ledger.mark_retry,
                row.id,
                f"not published to {topic}: {exc}",
                time.time() + DEAD_LETTER_RETRY_S,
            )
            return False
        return True

    async def _give_up(self, row: ClaimedEmail, reason: str, why: str) -> bool:
        """Dead-letter a webhook that cannot go at all (not counted against the webhook)."""
        if not await self._dead_letter(row, reason):
            return False
        await asyncio.to_thread(self.ledger.webhooks.dead, row, reason)
        self.metrics.dead_letters.labels(NOTIFICATIONS_DEAD.name, why).inc()
        return True

    async def _turn_off(
        self, row: ClaimedEmail, key: str, result: HookResult, failures: int, why: str
    ) -> bool:
        """The last straw: dead letter and SubscriptionBounced published, then recorded."""
        reason = (
            result.reason
            if why == "gone"
            else f"turned off after {failures} failed attempts in a row: {result.reason}"
        )
        if not await self._dead_letter(row, reason):
            return False
        event = SubscriptionBounced(
            subscription_id=row.subscription_id,
            reason=reason[:2000],
            permanent=True,
            disable=True,
            channel="webhook",
        )
        if not await self._publish(row, SUBSCRIPTION_FEEDBACK.name, event, row.subscription_id):
            return False
        await asyncio.to_thread(
            self.ledger.webhooks.turn_off, row, key, reason, failures, why, time.time()
        )
        log.warning("webhook of subscription %s turned off: %s", row.subscription_id, reason)
        self.metrics.dead_letters.labels(NOTIFICATIONS_DEAD.name, "webhook_turned_off").inc()
        self.metrics.webhooks_disabled.labels(why).inc()
        self.on_email()
        return True
