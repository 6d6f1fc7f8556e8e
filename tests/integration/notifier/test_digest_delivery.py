"""Digest items buffered in the ledger go out as one email through the sender, when due."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from connect311_contracts.subscriptions import Delivery
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mailer import Mailer
from connect311_notifier.metrics import Metrics
from connect311_notifier.render import Renderer
from connect311_notifier.sender import Sender
from connect311_notifier.settings import NotifierSettings
from tests.integration.notifier.conftest import addressed_to, eventually
from tests.support.smtp import SmtpSink
from tests.unit.notifier.factories import event, matched, request, subscription

N = 40


async def test_weekly_digest_folds_its_items_into_one_email(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = NotifierSettings(
        smtp_port=smtp_sink.port,  # type: ignore[attr-defined]
        database_url=f"sqlite:///{tmp_path / 'digest.db'}",
    )
    ledger = Ledger(create_engine(settings.database_url))
    ledger.create_schema()
    sub = subscription(delivery=Delivery.WEEKLY)
    now = time.time()
    plan = make_planner(settings, lambda: datetime.fromtimestamp(now, UTC))
    items = [Incoming(matched(sub, event(request())), "k", now) for _ in range(N)]
    ledger.record(items, plan, now)
    assert ledger.flush_digests(now) == 0 and ledger.digest_queue_size() == N

    week_later = now + 8 * 86400
    assert ledger.flush_digests(week_later) == 1
    (email,) = ledger.claim("me", week_later, 10)
    links = LinkBuilder("http://map.test", "secret")
    renderer = Renderer.create(settings, links)
    mailer = Mailer(settings)
    sender = Sender(settings, ledger, mailer, renderer, None, Metrics())  # type: ignore[arg-type]
    await sender.deliver(email)
    await mailer.close()

    await eventually(lambda: len(addressed_to(smtp_sink, [sub.email])) == 1, what="the digest")
    (digest,) = addressed_to(smtp_sink, [sub.email])
    assert digest["Subject"] == f"Your weekly 311 digest: {N} requests for Home"
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"== New ({N}) ==" in text
    for item in items:  # every request, once
        request_id = item.command.request_event.request.service_request_id  # type: ignore[union-attr]
        assert text.count(links.request_url(request_id)) == 1
    assert ledger.status_counts() == {"sent": 1} and ledger.digest_queue_size() == 0
    ledger.engine.dispose()
