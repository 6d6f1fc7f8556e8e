"""Response and request bodies, so the OpenAPI document says exactly what comes back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from connect311_contracts.subscriptions import (
    LANGUAGE_PATTERN,
    MAX_RADIUS_M,
    MIN_RADIUS_M,
    AreaTarget,
    Delivery,
    SubscriptionFilters,
    SubscriptionStatus,
    SubscriptionTarget,
)
from connect311_contracts.webhook_url import MAX_URL_CHARS
from connect311_contracts.webhooks import WebhookFormat


class PointGeometry(BaseModel):
    """A GeoJSON Point: [long, lat]."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class RequestProperties(BaseModel):
    """What the map shows about a request (plain text; render it as text, never HTML)."""

    service_request_id: str
    status: str
    service_name: str | None
    service_code: str | None
    agency_responsible: str | None
    dataset: str
    requested_datetime: str
    updated_datetime: str | None
    address: str | None
    description: str | None


class RequestFeature(BaseModel):
    """One request as a GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: RequestProperties


class RequestCollection(BaseModel):
    """A page of requests; pass `next_cursor` as `cursor` for the next page."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[RequestFeature]
    next_cursor: str | None = None


class ClusterProperties(BaseModel):
    """One grid cell: how many records, by status and by dataset, and the cell's bounds."""

    count: int
    by_status: dict[str, int] = Field(
        description="Records with a status, by status (crime incidents have none: not here)"
    )
    by_dataset: dict[str, int] = Field(description='Every record, by dataset ("311", "crime")')
    bounds: tuple[float, float, float, float]


class ClusterFeature(BaseModel):
    """A grid cell as a GeoJSON Feature at the centroid of its requests."""

    type: Literal["Feature"] = "Feature"
    geometry: PointGeometry
    properties: ClusterProperties


class ClusterCollection(BaseModel):
    """Server-side aggregation for low zoom levels."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    zoom: int
    cell_degrees: float
    total: int
    features: list[ClusterFeature]


class TimelineEntry(BaseModel):
    """One recorded change of a request."""

    occurred_at: str
    source_at: str
    event_type: str
    status: str
    previous_status: str | None
    status_notes: str | None


class RequestDetail(RequestFeature):
    """One request with its whole timeline."""

    status_notes: str | None
    status_text: str = Field(
        description="The status in a resident's words, e.g. "
        "'Closed — referred to another agency (city status: Referred to Law)'"
    )
    closed_reason: str | None = Field(description="fixed, duplicate, cancelled or referred")
    raw_status: str = Field(description="The city's own status word, as the source gave it")
    closed_datetime: str | None
    expected_datetime: str | None
    due_datetime: str | None = Field(
        default=None,
        description="When it should be closed: the feed's expected_datetime, else the "
        "operator's service level for its category or department (null: no target)",
    )
    due_source: Literal["feed", "service_level"] | None = None
    due_target: str | None = Field(
        default=None, description="The service level applied, e.g. '3 business days'"
    )
    overdue: bool = Field(default=False, description="Open and past its due date now")
    overdue_seconds: int | None = Field(default=None, description="How late, when overdue")
    media_url: str | None = Field(
        default=None, description="The request's photo (http or https only; else null)"
    )
    timeline: list[TimelineEntry]


class SeriesPoint(BaseModel):
    """Opened and resolved counts of one agency in one period."""

    period: str
    agency: str
    opened: int
    resolved: int


class BacklogRow(BaseModel):
    """Open requests of one agency and how long they have been open, in seconds."""

    agency: str
    open: int
    dated_in_future: int = Field(
        description="Open requests dated after `as_of` (the feed's clock runs ahead): counted "
        "in `open`, left out of the ages"
    )
    median_age_seconds: int | None = Field(description="Seconds since the minute it was made")
    p90_age_seconds: int | None
    oldest_age_seconds: int | None


class CloseTimeRow(BaseModel):
    """Time to close of one agency, in seconds (to the minute under 2 days, hour beyond)."""

    agency: str
    closed: int
    median_seconds: int | None
    p90_seconds: int | None


class Stats(BaseModel):
    """Department statistics for the filtered requests (durations in seconds)."""

    interval: str
    as_of: str = Field(description="UTC time the backlog ages are measured from")
    series: list[SeriesPoint]
    backlog: list[BacklogRow]
    time_to_close: list[CloseTimeRow]


class Category(BaseModel):
    """A service type present in the data."""

    service_code: str
    service_name: str | None
    count: int
    datasets: list[str] = Field(
        description="The datasets it occurs in (a crime's offence type: crime), so lists can "
        "group the categories by dataset"
    )


class Agency(BaseModel):
    """A department present in the data."""

    agency: str
    count: int


class Dataset(BaseModel):
    """A dataset present in the data."""

    dataset: str
    count: int


class TypeCount(BaseModel):
    """How many records of one type (a crime's offence, a request's category)."""

    type: str
    count: int


class WeekdayCount(BaseModel):
    """How many records on one day of the week (city time)."""

    day: str
    count: int


class HourCount(BaseModel):
    """How many records in one hour of the day, 0-23 (city time)."""

    hour: int
    count: int


class DayCount(BaseModel):
    """How many records on one date (city time, ISO date)."""

    day: str
    count: int


class Breakdown(BaseModel):
    """Counts by type and by time of the filtered records (crime: no time to close)."""

    time_zone: str = Field(description="The city's zone the days and hours are in")
    total: int
    by_type: list[TypeCount] = Field(description="Largest first, at most 25")
    other_types: int = Field(description="Records of the types not listed")
    type_count: int = Field(description="How many different types there are")
    by_weekday: list[WeekdayCount]
    by_hour: list[HourCount]
    per_day: list[DayCount]


GEOMETRY_KEYS = frozenset({"type", "coordinates"})
"""The only members an area's GeoJSON geometry may have (an allow-list: nothing else is kept)."""


def plain_geometry(target: SubscriptionTarget) -> SubscriptionTarget:
    """Refuse an area whose geometry carries members besides type and coordinates."""
    if isinstance(target, AreaTarget):
        unknown = sorted(str(key) for key in set(target.geometry) - GEOMETRY_KEYS)
        if unknown:
            raise ValueError(
                f"target.geometry has an unknown member {unknown[0]!r}; send only "
                "'type' and 'coordinates' of a GeoJSON Polygon or MultiPolygon"
            )
    return target


class WebhookSignup(BaseModel):
    """Where a subscription's alerts are POSTed (docs/webhooks.md: payloads, signatures)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=8,
        max_length=MAX_URL_CHARS,
        description="https:// to a public host, port 443 (the receiver's own endpoint)",
    )
    format: WebhookFormat = Field(
        default=WebhookFormat.STANDARD,
        description="`standard` (our signed JSON), or `slack` / `teams` incoming-webhook messages",
    )


class SignupBody(BaseModel):
    """A new subscription; it stays pending until its confirmation link is opened."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    target: SubscriptionTarget
    filters: SubscriptionFilters = SubscriptionFilters()
    delivery: Delivery = Delivery.INSTANT
    label: str | None = Field(default=None, max_length=200)
    language: str | None = Field(
        default=None,
        min_length=2,
        max_length=12,
        pattern=LANGUAGE_PATTERN,
        description="The page's language ('en', 'es'): the emails are written in it. Without "
        "it (or for a language the site lacks) the request's cookie or Accept-Language decides",
    )
    webhook: WebhookSignup | None = Field(
        default=None, description="Also POST each alert, signed, to this receiver"
    )
    email_alerts: bool = Field(
        default=True,
        description="False: alerts go to the webhook only (the confirmation is still emailed)",
    )

    _plain_geometry = field_validator("target")(plain_geometry)


class WebhookRotate(BaseModel):
    """Which of the manage link owner's subscriptions gets a new webhook secret."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=100)


class WebhookSecret(BaseModel):
    """A webhook's signing secret: shown in this answer only, never again (rotate to replace)."""

    subscription_id: str
    secret: str = Field(description="`whsec_...`: verify `webhook-signature` with it")
    secret_version: int


class Accepted(BaseModel):
    """The same answer for every accepted sign-up (plus its webhook's secret, if it has one)."""

    message: str
    webhook: WebhookSecret | None = None


class ManagedWebhook(BaseModel):
    """A subscription's webhook, as its owner sees it (never its secret)."""

    url: str
    format: WebhookFormat
    enabled: bool = Field(description="False once turned off after repeated failures or a 410")
    secret_version: int


class PreviewBody(BaseModel):
    """A proposed subscription's target and filters."""

    model_config = ConfigDict(extra="forbid")

    target: SubscriptionTarget
    filters: SubscriptionFilters = SubscriptionFilters()

    _plain_geometry = field_validator("target")(plain_geometry)


class WeekCount(BaseModel):
    """Alerts in one week (starting Monday)."""

    week: str
    alerts: int


class Preview(BaseModel):
    """How many alerts the subscription would have produced over the data present (<= 90 days)."""

    days: int = Field(description="The longest history a preview looks at (90 days)")
    history_days: float = Field(
        description="Days of data actually counted: from the city's first request, at most 90"
    )
    short_history: bool = Field(description="True when fewer than 90 days of data exist")
    since: str | None
    until: str | None
    total: int
    per_week_average: float
    weeks: list[WeekCount]


class FollowedRequest(BaseModel):
    """The request a follow alert names, as a person recognises it (no reporter data)."""

    service_request_id: str
    service_name: str | None
    address: str | None
    status: str


class ManagedSubscription(BaseModel):
    """One of the token owner's subscriptions (no address shown)."""

    subscription_id: str
    label: str | None
    target: SubscriptionTarget
    filters: SubscriptionFilters
    delivery: Delivery
    status: SubscriptionStatus
    created_at: datetime
    confirmed_at: datetime | None
    followed: FollowedRequest | None = Field(
        default=None, description="For a followed request: what and where it is"
    )
    webhook: ManagedWebhook | None = None
    email_alerts: bool = True


class RequestMatch(BaseModel):
    """One request a looked-up number names (the city's own number may exist in several feeds)."""

    service_request_id: str
    source: str
    dataset: str
    service_name: str | None
    agency_responsible: str | None
    address: str | None
    status: str
    requested_datetime: str | None


class RequestMatches(BaseModel):
    """Every request a number names: none, one, or several to choose from."""

    number: str
    matches: list[RequestMatch]


class ManageList(BaseModel):
    """The subscriptions of the address a manage link belongs to."""

    subscriptions: list[ManagedSubscription]


class ManageAction(BaseModel):
    """A change to one of the owner's subscriptions."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=100)
    action: Literal["set_delivery", "unsubscribe", "resume", "edit", "delete"] = Field(
        description="`unsubscribe` pauses (no emails) and `resume` turns it back on; `edit` "
        "changes the place (`lat` and `long`) and `radius_m` of a circle alert and/or `filters`"
    )
    delivery: Delivery | None = None
    radius_m: float | None = Field(
        default=None, ge=MIN_RADIUS_M, le=MAX_RADIUS_M, description="New radius (edit)"
    )
    filters: SubscriptionFilters | None = Field(default=None, description="New filters (edit)")
    lat: float | None = Field(
        default=None, ge=-90, le=90, description="New place (edit a circle alert; with `long`)"
    )
    long: float | None = Field(
        default=None, ge=-180, le=180, description="New place (edit a circle alert; with `lat`)"
    )


class Health(BaseModel):
    """Dependency checks."""

    status: Literal["ok", "degraded"]
    database: str
    broker: str


class DeadLetter(BaseModel):
    """A message the map API could not process."""

    id: int
    topic: str
    partition: int
    offset: int
    reason: str
    received_at: datetime
    replayed_at: datetime | None


class ReplayResult(BaseModel):
    """Outcome of replaying dead letters."""

    replayed: int
    still_failing: int


class SubscriberCounts(BaseModel):
    """Subscriptions by status (counts only)."""

    counts: dict[str, int]
