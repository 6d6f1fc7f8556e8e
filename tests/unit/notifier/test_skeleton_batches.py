"""A claimed batch's events are rendered once each, however many connections send it.

The sender splits a batch of up to CLAIM_PER_LANE emails per connection into lanes by
recipient, and the lanes send at once, so every event of the batch is in play together.
Its renderer must keep a skeleton for each: with the fixed 32 it used to keep, 16
connections rendered each event of 5 recipients ~2.2 times (bench/notifier_sender.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import MagicMock

from connect311_contracts.notifications import SubscriberMatched, recipient_key
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.pacing import lane
from connect311_notifier.render import Renderer
from connect311_notifier.sender import CLAIM_PER_LANE, Sender
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.factories import event, matched, request, subscription

LANES = 16
PER_EVENT = 5  # about what a resident's circle alert reaches (bench/e2e.py: 4.6)


def test_each_event_of_a_batch_is_rendered_once_across_sixteen_connections(
    tmp_path: Path,
) -> None:
    settings = NotifierSettings(instant_per_hour=1_000, smtp_connections=LANES)
    now = time.time()
    events = CLAIM_PER_LANE * LANES // PER_EVENT
    commands: list[SubscriberMatched] = []
    for i in range(events):
        ev = event(request(str(10_000 + i)))
        commands += [matched(subscription(), ev) for _ in range(PER_EVENT)]
    engine = create_engine(f"sqlite:///{tmp_path / 'notifier.db'}")
    try:
        ledger = Ledger(engine)
        ledger.create_schema()
        plan = make_planner(settings, lambda: datetime.fromtimestamp(now, UTC))
        items = [Incoming(c, recipient_key(c.subscription.email), now - 1) for c in commands]
        ledger.record(items, plan, now)
        renderer = Renderer.create(settings, LinkBuilder("https://alerts.example.city", "k"))
        mailers = [MagicMock() for _ in range(LANES)]
        sender = Sender(settings, ledger, mailers, renderer, MagicMock(), MagicMock())
        batch = ledger.claim("test", now, CLAIM_PER_LANE * LANES)
        assert len(batch) == len(commands)  # one full batch, as in a backlog
        lanes = [[e for e in batch if lane(e, LANES) == n] for n in range(LANES)]
        # The connections take turns, an email each, as their sends interleave on the loop.
        for turn in range(max(map(len, lanes))):
            for emails in lanes:
                if turn < len(emails):
                    sender.render(emails[turn])
        assert renderer.skeletons.rendered == events
    finally:
        engine.dispose()
