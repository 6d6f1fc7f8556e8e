"""The sender: drains the ledger's outbox over SMTP, one email at a time, paced."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message

from aiokafka import AIOKafkaProducer

from connect311_bus.kafka import encode
from connect311_bus.logs import log_context
from connect311_contracts.notifications import (
    ConfirmationRequested,
    DepartmentDigestRequested,
    NotificationDeadLettered,
    SubscriberMatched,
)
from connect311_contracts.subscriptions import SubscriptionBounced
from connect311_contracts.topics import NOTIFICATIONS_DEAD, SUBSCRIPTION_FEEDBACK
from connect311_notifier.leases import Leases
from connect311_notifier.ledger import ClaimedEmail, Ledger
from connect311_notifier.mailer import Mailer
from connect311_notifier.metrics import Metrics
from connect311_notifier.outcome import (
    DEAD_LETTER_RETRY_S,
    Outcome,
    RetryLimits,
    SendResult,
    Step,
    judge,
)
from connect311_notifier.pacing import Pacer, lane, sleep_until_due
from connect311_notifier.policy import CHOSEN_DIGEST, RATE_LIMITED, Channel, EmailKind
from connect311_notifier.relay_watch import RelayWatch
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.shared_commits import SharedCommits

# lane and sleep_until_due moved to pacing (with Pacer); still importable from here.
__all__ = ["CLAIM_PER_LANE", "TRACE_HEADER", "Attempt", "Sender", "lane", "sleep_until_due"]

log = logging.getLogger(__name__)
CLAIM_PER_LANE = 50
"""Emails claimed at once per SMTP connection (in a backlog the next batch is claimed while
the lanes send this one; a batch is sent when every lane has drained the previous one)."""
TRACE_HEADER = "X-Connect311-Trace"


def trace_ids(email: ClaimedEmail) -> list[str]:
    """The distinct trace ids of an email's commands, in order (a digest carries several)."""
    return list(dict.fromkeys(c.trace_id for c in email.commands if c.trace_id))


@dataclass(frozen=True)
class Attempt:
    """How one delivery attempt ended for the lane: finished (sent or dead-lettered) or
    waiting for a retry, and whether the next email was marked 'sending' with it."""

    finished: bool
    next_marked: bool = False


class Sender:
    """Claims due emails, sends them, records the outcome; permanent failures dead-lettered."""

    def __init__(
        self,
        settings: NotifierSettings,
        ledger: Ledger,
        mailer: Mailer | Sequence[Mailer],
        renderer: Renderer,
        producer: AIOKafkaProducer,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        # One SMTP connection each; a recipient's emails always share one (see lane).
        self.mailers = [mailer] if isinstance(mailer, Mailer) else list(mailer)
        self.renderer = renderer
        # A batch's lanes send at once, each through its share in queue order, so the events
        # of a whole batch are in play together: keep one skeleton for each email it can
        # hold. With 32 kept and 16 connections, each event of 5 recipients was rendered
        # ~2.2 times (bench/notifier_sender.py --conns 16 --per-event 5: 0.90 -> 0.72 ms CPU
        # an email). At most ~10 KB each: 64 connections, ~32 MB.
        renderer.skeletons.hold_at_least(CLAIM_PER_LANE * len(self.mailers))
        self.producer = producer
        self.metrics = metrics
        self.pacer = Pacer(settings.global_rate_per_s)
        self.wake = asyncio.Event()
        self.relay = RelayWatch(settings, metrics)
        self.limits = RetryLimits(
            settings.max_attempts, settings.retry_base_s, settings.retry_max_s
        )
        self.leases = Leases(ledger, settings, metrics, Channel.EMAIL, self.wake)
        # The lanes' records, one commit for all lanes waiting at once (see shared_commits).
        self.records = SharedCommits(lambda *args: self.ledger.mark_sent_many(*args))

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; the in-flight email is always finished and recorded."""
        await self.leases.run(stop, self._send_until)

    async def _send_until(self, stop: asyncio.Event) -> None:
        # The next batch, claimed while this one is sent (see _next_batch).
        ahead: asyncio.Task[list[ClaimedEmail]] | None = None
        try:
            while not stop.is_set():
                if not self.relay.reachable:
                    await self._give_back(ahead)
                    ahead = None
                    # The emails wait untouched (no attempt, no back-off) while one probe at
                    # a time finds out when the server answers again.
                    await self.relay.until_reachable(self.mailers[0], stop)
                    continue
                claimed, ahead = ahead, None
                batch = await claimed if claimed else []
                if not batch:  # none claimed ahead, or none then: the last batch is done now
                    batch = await self._next_batch()
                if not batch:
                    self.relay.idle()
                    await self._idle(stop)
                    continue
                if len(batch) == CLAIM_PER_LANE * len(self.mailers):  # a backlog: claim on
                    ahead = asyncio.create_task(self._next_batch(), name="claim-ahead")
                lanes: list[list[ClaimedEmail]] = [[] for _ in self.mailers]
                for email in batch:
                    lanes[lane(email, len(lanes))].append(email)
                async with asyncio.TaskGroup() as group:
                    for emails, mailer in zip(lanes, self.mailers, strict=True):
                        if emails:
                            group.create_task(self._drain(emails, mailer, stop))
        finally:
            await asyncio.shield(self._give_back(ahead))

    async def _next_batch(self) -> list[ClaimedEmail]:
        """Due digests folded in, then the next due emails claimed.

        In a backlog this runs while the lanes send the previous batch, so they do not wait
        for the claim. Order still holds: the ledger hands out no email of a recipient
        whose earlier one is still in flight (claimed, or sent but not yet recorded).
        """
        # Cleared before looking, so a command recorded after this point always wakes us.
        self.wake.clear()
        await asyncio.to_thread(self.ledger.flush_digests, time.time())
        self.metrics.digest_queue.set(await asyncio.to_thread(self.ledger.digest_queue_size))
        return await asyncio.to_thread(
            self.ledger.claim,
            self.settings.instance_id,
            time.time(),
            CLAIM_PER_LANE * len(self.mailers),
        )

    async def _give_back(self, ahead: asyncio.Task[list[ClaimedEmail]] | None) -> None:
        """Release a batch claimed ahead and not sent (stopping, or the server went away)."""
        if ahead is None:
            return
        try:
            batch = await ahead
        except Exception:  # the claim failed: nothing was taken (its error was ours to see)
            log.exception("claiming ahead failed")
            return
        if batch:
            await asyncio.to_thread(self.ledger.release, [e.id for e in batch])

    async def _drain(self, emails: list[ClaimedEmail], mailer: Mailer, stop: asyncio.Event) -> None:
        """Send one lane's emails in order over its connection; give the rest back on stop.

        Emails are marked 'sending' a chunk at a time, and the accepted ones recorded as
        sent in the commit that marks the next chunk (see Pacer.ahead): in a burst one commit
        per chunk, not one per email. Before the pacer makes the lane wait, what SMTP
        accepted is recorded first, so at a paced rate each email is recorded at once.

        After a temporary failure, the rest of that recipient's emails are given back
        unsent: they wait behind the retry (the ledger holds them back) instead of
        overtaking it. Other recipients in the lane carry on. Once the server is found
        unreachable (by any lane), every lane gives the rest back.
        """
        waiting: set[str] = set()  # recipients whose earlier email waits for a retry
        held: list[int] = []
        marked: set[int] = set()  # already 'sending'
        accepted: list[tuple[int, float]] = []  # accepted by SMTP, not yet recorded as sent
        limit = self.settings.smtp_record_every
        try:
            for index, email in enumerate(emails):
                if email.recipient_key in waiting:
                    held.append(email.id)
                    continue
                if stop.is_set() or not self.relay.reachable:
                    held += [e.id for e in emails[index:]]
                    return
                if email.id not in marked or (accepted and not self.pacer.ready()):
                    chunk: list[int] = []
                    if email.id not in marked:
                        rest = (e for e in emails[index:] if e.recipient_key not in waiting)
                        chunk = [e.id for e in rest][: self.pacer.ahead(limit)]
                    await self._record(accepted, chunk)
                    marked.update(chunk)
                await self.pacer.wait()
                attempt = await self.deliver(email, True, None, mailer, accepted)
                if not attempt.finished:
                    waiting.add(email.recipient_key)
        finally:
            if accepted:
                await asyncio.shield(self._record(accepted, []))
            if held:
                await asyncio.shield(asyncio.to_thread(self.ledger.release, held))

    async def _record(self, accepted: list[tuple[int, float]], sending: list[int]) -> None:
        """One commit: the accepted emails sent, the next chunk 'sending' (`accepted` emptied).

        Shared with the other lanes recording at the same moment (SharedCommits)."""
        done = list(accepted)
        accepted.clear()
        await self.records.record(done, sending)

    async def _idle(self, stop: asyncio.Event) -> None:
        due = await asyncio.to_thread(self.ledger.next_due)
        await sleep_until_due(due, self.settings.digest_check_s, stop, self.wake)

    def render(self, email: ClaimedEmail) -> Message:
        """The message for a claimed email, with its stored Message-ID and the current Date."""
        message_id = f"<{email.message_id}@{self.settings.message_id_domain}>"
        now = datetime.now(UTC)
        first = email.commands[0]
        if email.kind is EmailKind.CONFIRMATION and isinstance(first, ConfirmationRequested):
            return self.renderer.confirmation(first, message_id, now)
        if email.kind is EmailKind.WEBHOOK_DISABLED and isinstance(first, SubscriberMatched):
            return self.renderer.webhook_disabled(first, email.notice, message_id, now)
        if email.kind is EmailKind.DEPARTMENT_DIGEST and isinstance(
            first, DepartmentDigestRequested
        ):
            return self.renderer.department_digest(first, message_id, now)
        matched = [c for c in email.commands if isinstance(c, SubscriberMatched)]
        if email.kind is EmailKind.DIGEST:
            # Folded at the cap (not a summary the person chose): the digest says so.
            grouped = RATE_LIMITED in email.reasons and CHOSEN_DIGEST not in email.reasons
            period = email.period or "hourly"
            return self.renderer.digest(matched, period, message_id, now, grouped=grouped)
        # One email for every match of one person and one event: the followed request
        # leads (its subject says what changed), the other matches are listed as reasons.
        lead = next((c for c in matched if c.subscription.target.kind == "follow"), matched[0])
        also = [c for c in matched if c is not lead]
        follow = lead.subscription.target.kind == "follow"
        return self.renderer.alert(lead, follow, message_id, now, also=also, notice=email.notice)

    async def deliver(
        self,
        email: ClaimedEmail,
        marked: bool = False,
        following: ClaimedEmail | None = None,
        mailer: Mailer | None = None,
        accepted: list[tuple[int, float]] | None = None,
    ) -> Attempt:
        """One attempt for one email, its outcome recorded before the next.

        `marked`: the email is already 'sending'. `following`: the next email, marked
        'sending' in the same commit that records this one as sent (see Attempt).
        `accepted`: when given, a sent email is added to it (id, when) for the lane to
        record with its chunk instead of committed here.
        """
        traces = trace_ids(email)
        # The first command names the email in logs; never the address (redacted anyway).
        with log_context(event_id=email.commands[0].event_id, trace_id=next(iter(traces), None)):
            return await self._deliver(email, marked, following, traces, mailer, accepted)

    async def _deliver(
        self,
        email: ClaimedEmail,
        marked: bool,
        following: ClaimedEmail | None,
        traces: list[str],
        mailer: Mailer | None,
        accepted: list[tuple[int, float]] | None = None,
    ) -> Attempt:
        kind = email.kind.value
        try:
            message = self.render(email)
        except Exception as exc:  # a bug or impossible data: keep it visible, move on
            log.exception("could not render email %d", email.id)
            failed = SendResult(Outcome.PERMANENT, None, f"render failed: {exc}")
            return Attempt(finished=await self._dead(email, failed))
        if traces:
            message[TRACE_HEADER] = " ".join(traces[:20])
        if not marked:
            await asyncio.to_thread(self.ledger.mark_sending, email.id, time.time())
        result = await (mailer or self.mailers[0]).send(message)
        now = time.time()
        verdict = judge(result, email.attempts, self.limits, random.random())
        if verdict.step is Step.RELEASE:
            # Not this email's failure: it goes back as it was (it never reached SMTP), and
            # every lane stops handing emails to a server that cannot take them.
            self.relay.lost(result)
            self.metrics.failed.labels(kind, result.outcome.value).inc()
            await asyncio.to_thread(self.ledger.release, [email.id])
            return Attempt(finished=False)
        if verdict.step is Step.SENT:
            self.relay.sent()
            if accepted is not None:
                accepted.append((email.id, now))
            else:
                then = following.id if following else None
                await asyncio.to_thread(self.ledger.mark_sent, email.id, now, then)
            self.metrics.sent.labels(kind).inc()
            self.metrics.latency.labels(kind).observe(max(0.0, now - email.source_ts))
            log.info(
                "sent %s email %d for subscription %s (%d command(s), %.3f s after the command)",
                kind,
                email.id,
                email.subscription_id,
                len(email.commands),
                now - email.source_ts,
            )
            return Attempt(finished=True, next_marked=following is not None)
        self.metrics.failed.labels(kind, result.outcome.value).inc()
        if verdict.step is Step.RETRY:
            delay = verdict.retry_in_s
            log.info("email %d: %s; retry in %.1f s", email.id, result.reason, delay)
            await asyncio.to_thread(self.ledger.mark_retry, email.id, result.reason, now + delay)
            self.metrics.retries.labels(kind).inc()
            return Attempt(finished=False)
        return Attempt(finished=await self._dead(email, verdict.result))

    async def _dead(self, email: ClaimedEmail, result: SendResult) -> bool:
        """Publish the dead letter (and bounce) first, then record: a crash between repeats it.

        False when Kafka did not take the dead letter: the email waits for another try.
        """
        now = time.time()
        letter = NotificationDeadLettered(
            email_kind=email.kind.value,
            subscription_id=email.subscription_id,
            reason=result.reason[:2000],
            smtp_code=result.code,
            attempts=email.attempts + 1,
            commands=email.commands,
        )
        try:
            await self.producer.send_and_wait(
                NOTIFICATIONS_DEAD.name, encode(letter), key=email.recipient_key.encode()
            )
            if result.bounce:
                await self._bounce(email, result)
        except Exception as exc:  # Kafka unavailable: keep the email and try the whole step later
            log.warning("could not publish dead letter for email %d: %s", email.id, exc)
            await asyncio.to_thread(
                self.ledger.mark_retry,
                email.id,
                f"dead letter not published: {exc}",
                now + DEAD_LETTER_RETRY_S,
            )
            return False
        await asyncio.to_thread(
            self.ledger.mark_dead,
            email.id,
            result.reason,
            email.subscription_id,
            result.bounce,
            now,
        )
        why = "bounce" if result.bounce else "gave_up"
        self.metrics.dead_letters.labels(NOTIFICATIONS_DEAD.name, why).inc()
        return True

    async def _bounce(self, email: ClaimedEmail, result: SendResult) -> None:
        count = await asyncio.to_thread(self.ledger.hard_bounces, email.subscription_id) + 1
        disable = count >= self.settings.hard_bounce_threshold
        event = SubscriptionBounced(
            subscription_id=email.subscription_id,
            reason=f"hard bounce {count}/{self.settings.hard_bounce_threshold}: {result.reason}"[
                :2000
            ],
            permanent=True,
            disable=disable,
        )
        await self.producer.send_and_wait(
            SUBSCRIPTION_FEEDBACK.name, encode(event), key=email.subscription_id.encode()
        )
        if disable:
            log.warning(
                "subscription %s disabled after %d hard bounces", email.subscription_id, count
            )
        self.metrics.bounces.labels(str(disable).lower()).inc()
