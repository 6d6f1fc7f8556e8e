"""Tables (SQLAlchemy Core): request state, history, subscriptions, sign-up limits, dead letters."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# Datetimes are stored as naive UTC so SQLite and PostgreSQL compare them the same way.
requests = Table(
    "requests",
    metadata,
    Column(
        "pk",
        Integer().with_variant(BigInteger(), "postgresql"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("service_request_id", String(300), nullable=False, unique=True),
    Column("source", String(100), nullable=False),
    Column("source_request_id", String(200), nullable=False),
    Column("dataset", String(60), nullable=False),
    Column("service_code", String(200)),
    Column("service_name", String(300)),
    Column("agency_responsible", String(300)),
    Column("status", String(20), nullable=False),
    Column("raw_status", String(200), nullable=False),
    Column("closed_reason", String(20)),
    Column("status_notes", Text),
    Column("description", Text),
    Column("address", String(500)),
    Column("zipcode", String(20)),
    Column("lat", Float, nullable=False),
    Column("long", Float, nullable=False),
    Column("requested_datetime", DateTime, nullable=False),
    Column("updated_datetime", DateTime),
    Column("closed_datetime", DateTime),
    Column("expected_datetime", DateTime),
    Column("media_url", String(2000)),
    # Derived columns for fast stats: day opened/closed and whole hours to close.
    Column("opened_day", String(10), nullable=False),
    Column("closed_day", String(10)),
    Column("hours_to_close", Integer),
    # Freshness rank of the stored snapshot: a lower-ranked event never overwrites it.
    Column("rank_source_at", DateTime, nullable=False),
    Column("rank_occurred_at", DateTime, nullable=False),
    Column("rank_event_id", String(100), nullable=False),
    Column("last_event_type", String(40), nullable=False),
)
# Covering (lat, long, status): small bboxes and cluster counts never touch the table.
Index("ix_requests_lat_long", requests.c.lat, requests.c.long, requests.c.status)
Index("ix_requests_requested", requests.c.requested_datetime)
Index("ix_requests_status", requests.c.status)
Index("ix_requests_service_code", requests.c.service_code)
# Covering index for the stats queries: each is an index-only scan grouped by agency.
Index(
    "ix_requests_agency_stats",
    requests.c.agency_responsible,
    requests.c.opened_day,
    requests.c.status,
    requests.c.closed_day,
    requests.c.hours_to_close,
)
Index("ix_requests_dataset", requests.c.dataset)
# "Track my request" looks requests up by the city's own number (db/lookup.py).
Index("ix_requests_source_request_id", requests.c.source_request_id)
# Atom feeds list requests newest change first (api/feeds_routes.py): one index walk.
Index("ix_requests_rank_source", requests.c.rank_source_at, requests.c.pk)
# Private feeds walk the city's own due dates newest first, and the requests without one
# by their making (db/feed_overdue.py).
Index(
    "ix_requests_expected_requested",
    requests.c.expected_datetime,
    requests.c.requested_datetime,
)

history = Table(
    "request_history",
    metadata,
    Column("event_id", String(100), primary_key=True),
    Column("service_request_id", String(300), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("previous_status", String(20)),
    Column("status_notes", Text),
    Column("occurred_at", DateTime, nullable=False),
    Column("source_at", DateTime, nullable=False),
    Column("backfill", Integer, nullable=False),
)
Index("ix_history_request", history.c.service_request_id, history.c.source_at)
Index("ix_history_source_at", history.c.source_at)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(100), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(64), nullable=False),
    Column("label", String(200)),
    Column("target", JSON, nullable=False),
    Column("filters", JSON, nullable=False),
    Column("delivery", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("confirmed_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
    Column("language", String(12)),  # the emails' language; NULL (older rows) is English
    # The webhook channel (contracts WebhookChannel as JSON; never its secret, which is
    # derived) and whether alerts are also emailed; NULL (older rows): none, and yes.
    Column("webhook", JSON),
    Column("email_alerts", Integer),
    # When the notifier last saw the webhook work (its WebhookVerified), and at which secret
    # version: a rotation makes the check stale until the new secret is checked. NULL (older
    # rows too): not checked yet.
    Column("webhook_verified_at", DateTime),
    Column("webhook_verified_version", Integer),
)
Index("ix_subscriptions_email_key", subscriptions.c.email_key)
Index("ix_subscriptions_status", subscriptions.c.status)

# The version a subscription's private feed URL must carry (db/feed_tokens.py): a new
# feed address raises it, and every older URL stops working. No row: version 0.
feed_tokens = Table(
    "feed_tokens",
    metadata,
    Column("subscription_id", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("rotated_at", DateTime, nullable=False),
)

# Aggregates the state writer keeps in step with `requests` (core/aggregates.py), so stats
# and low-zoom clusters read hundreds of rows instead of every request. `n` can reach 0
# (a snapshot moved elsewhere); readers skip those rows.
agg_opened = Table(
    "agg_opened",
    metadata,
    Column("agency", String(300), primary_key=True),
    Column("dataset", String(60), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("n", BigInteger, nullable=False),
)
agg_resolved = Table(
    "agg_resolved",
    metadata,
    Column("agency", String(300), primary_key=True),
    Column("dataset", String(60), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("n", BigInteger, nullable=False),
)
# Time to close in counted minutes (core.stats.close_bucket_minutes); replaces the old
# whole-hour `agg_hours`, which rounded a 25-minute close down to nothing.
agg_close_minutes = Table(
    "agg_close_minutes",
    metadata,
    Column("agency", String(300), primary_key=True),
    Column("dataset", String(60), primary_key=True),
    Column("minutes", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInteger, nullable=False),
)
agg_cells = Table(
    "agg_cells",
    metadata,
    # The cells' zoom (core.aggregates.CELL_ZOOMS): every request counts once at each.
    Column("zoom", Integer, primary_key=True, autoincrement=False),
    Column("cx", Integer, primary_key=True, autoincrement=False),
    Column("cy", Integer, primary_key=True, autoincrement=False),
    # Per dataset: a zoomed-out cell says "12 requests, 3 crime incidents", never counts an
    # incident (stored as closed) as a closed request.
    Column("dataset", String(60), primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("lat_micro", BigInteger, nullable=False),  # sums of coordinates x 1e6
    Column("long_micro", BigInteger, nullable=False),
)
# Requests per (dataset, agency, service code, name): the category, department and dataset
# lists read these few rows. "" stands for a missing agency, code or name.
agg_kinds = Table(
    "agg_kinds",
    metadata,
    Column("dataset", String(60), primary_key=True),
    Column("agency", String(300), primary_key=True),
    Column("service_code", String(200), primary_key=True),
    Column("service_name", String(300), primary_key=True),
    Column("n", BigInteger, nullable=False),
)
# Which aggregate layout was last built from `requests` (rebuilt at start when it differs).
agg_meta = Table(
    "agg_meta",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Sign-up rate-limit counts, shared by every instance on this database. `key` is a keyed
# hash (HMAC with the signing secret) of the client IP or the address: never either one.
signup_limits = Table(
    "signup_limits",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("window_s", Integer, primary_key=True, autoincrement=False),
    Column("window_start", BigInteger, primary_key=True, autoincrement=False),
    Column("hits", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
Index("ix_signup_limits_expires", signup_limits.c.expires_at)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", Text),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("replayed_at", DateTime),
)

# Department digests already published (after the broker's acknowledgement), one row per
# subscription and digest day (the city's local date): the schedule skips them. Its event
# id is derived from the same pair, so a publish this table missed is dropped by the notifier.
department_digests = Table(
    "department_digests",
    metadata,
    Column("subscription_id", String(100), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("published_at", DateTime, nullable=False),
)
