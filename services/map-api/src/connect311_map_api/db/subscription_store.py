"""Subscriptions in the database (the map API owns them), and when each one's webhook was
last seen working (the notifier's word, kept beside the subscription, not in its contract)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from connect311_contracts.notifications import recipient_key
from connect311_contracts.subscriptions import (
    DEFAULT_LANGUAGE,
    Delivery,
    Subscription,
    SubscriptionStatus,
)
from connect311_contracts.webhooks import WebhookChannel
from connect311_map_api.core.state import aware_utc, naive_utc
from connect311_map_api.db.tables import feed_tokens, subscriptions

__all__ = [
    "counts_by_status",
    "from_row",
    "get",
    "insert",
    "iterate_all",
    "record_webhook_check",
    "remove",
    "same_owner",
    "save",
    "to_row",
    "webhook_checks",
    "with_delivery",
]

s = subscriptions.c


def to_row(sub: Subscription) -> dict[str, Any]:
    """The database row of a subscription."""
    return {
        "subscription_id": sub.subscription_id,
        "email": sub.email,
        "email_key": recipient_key(sub.email),
        "label": sub.label,
        "target": sub.target.model_dump(mode="json"),
        "filters": sub.filters.model_dump(mode="json"),
        "delivery": sub.delivery.value,
        "status": sub.status.value,
        "created_at": naive_utc(sub.created_at),
        "confirmed_at": naive_utc(sub.confirmed_at) if sub.confirmed_at else None,
        "updated_at": naive_utc(datetime.now(UTC)),
        "language": sub.language,
        "webhook": sub.webhook.model_dump(mode="json") if sub.webhook else None,
        "email_alerts": int(sub.email_alerts),
    }


def from_row(row: Any) -> Subscription:
    """The contract model of a stored subscription."""
    m = row._mapping
    return Subscription.model_validate(
        {
            "subscription_id": m["subscription_id"],
            "email": m["email"],
            "label": m["label"],
            "target": m["target"],
            "filters": m["filters"],
            "delivery": m["delivery"],
            "status": m["status"],
            "created_at": aware_utc(m["created_at"]),
            "confirmed_at": aware_utc(m["confirmed_at"]),
            "language": m["language"] or DEFAULT_LANGUAGE,  # NULL: stored before languages
            "webhook": m["webhook"],
            "email_alerts": m["email_alerts"] is None or bool(m["email_alerts"]),
        }
    )


def insert(conn: Connection, sub: Subscription) -> None:
    """Store a new subscription."""
    conn.execute(subscriptions.insert(), to_row(sub))


def get(conn: Connection, subscription_id: str) -> Subscription | None:
    """One subscription, or None."""
    row = conn.execute(select(subscriptions).where(s.subscription_id == subscription_id)).first()
    return from_row(row) if row else None


def save(conn: Connection, sub: Subscription) -> None:
    """Overwrite a stored subscription with a new state."""
    row = to_row(sub)
    conn.execute(update(subscriptions).where(s.subscription_id == sub.subscription_id).values(row))


def remove(conn: Connection, subscription_id: str) -> bool:
    """Delete a subscription (and so its address and place); True if it existed."""
    result = conn.execute(delete(subscriptions).where(s.subscription_id == subscription_id))
    conn.execute(delete(feed_tokens).where(feed_tokens.c.subscription_id == subscription_id))
    return bool(result.rowcount)


def same_owner(conn: Connection, subscription_id: str) -> list[Subscription]:
    """Every subscription of the address that owns `subscription_id` (never anyone else's)."""
    owner = select(s.email_key).where(s.subscription_id == subscription_id).scalar_subquery()
    query = select(subscriptions).where(s.email_key == owner).order_by(s.created_at)
    return [from_row(row) for row in conn.execute(query)]


def iterate_all(conn: Connection) -> Iterator[Subscription]:
    """Every stored subscription (for republishing)."""
    for row in conn.execute(select(subscriptions).order_by(s.subscription_id)):
        yield from_row(row)


def counts_by_status(conn: Connection) -> dict[str, int]:
    """How many subscriptions are in each status (counts only)."""
    rows = conn.execute(select(s.status, func.count()).group_by(s.status))
    counts = {status.value: 0 for status in SubscriptionStatus}
    counts.update({status: int(n) for status, n in rows})
    return counts


def with_delivery(sub: Subscription, delivery: Delivery) -> Subscription:
    """A copy with another delivery schedule."""
    return sub.model_copy(update={"delivery": delivery})


def record_webhook_check(
    conn: Connection, subscription_id: str, secret_version: int, at: datetime
) -> bool:
    """Keep the notifier's word that a subscription's webhook works (WebhookVerified): the
    latest time for its current secret version; True if stored. A check of another secret
    version (published before a rotation, read after it), of a subscription without a
    webhook, or of one deleted since, says nothing about the webhook it has now: ignored."""
    row = conn.execute(
        select(s.webhook, s.webhook_verified_at, s.webhook_verified_version).where(
            s.subscription_id == subscription_id
        )
    ).first()
    if row is None or not row.webhook:
        return False
    if WebhookChannel.model_validate(row.webhook).secret_version != secret_version:
        return False
    when = naive_utc(at)
    known = row.webhook_verified_at if row.webhook_verified_version == secret_version else None
    if known is not None and known >= when:
        return False  # a redelivered (or older) check: the latest time is kept
    conn.execute(
        update(subscriptions)
        .where(s.subscription_id == subscription_id)
        .values(webhook_verified_at=when, webhook_verified_version=secret_version)
    )
    return True


def webhook_checks(conn: Connection, subs: list[Subscription]) -> dict[str, datetime]:
    """When each of these subscriptions' webhooks was last seen working with its current
    secret; a subscription missing from the answer has not been checked since its webhook
    was made or its secret rotated (the notifier checks before its next alert)."""
    versions = {sub.subscription_id: sub.webhook.secret_version for sub in subs if sub.webhook}
    if not versions:
        return {}
    rows = conn.execute(
        select(s.subscription_id, s.webhook_verified_at, s.webhook_verified_version).where(
            s.subscription_id.in_(sorted(versions))
        )
    )
    return {
        r.subscription_id: r.webhook_verified_at.replace(tzinfo=UTC)
        for r in rows
        if r.webhook_verified_at is not None
        and r.webhook_verified_version == versions[r.subscription_id]
    }
