"""Response and request bodies, so the OpenAPI document says exactly what comes back.

Subscription bodies (sign-up, preview, manage) are in `subscription_models`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


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
