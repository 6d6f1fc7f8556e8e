"""Read queries for the API: map pages, clusters, one request, stats, lists, Open311."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Row,
    and_,
    case,
    cast,
    desc,
    extract,
    func,
    or_,
    select,
)

from connect311_contracts.datasets import SERVICE_REQUESTS, dataset_words
from connect311_map_api.core import stats as core_stats
from connect311_map_api.core.aggregates import cell_source
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox, grid_range
from connect311_map_api.core.state import iso, naive_utc
from connect311_map_api.db import aggregates
from connect311_map_api.db.tables import history, requests

r = requests.c


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions(f: RequestFilters, *, bbox_index: bool = True) -> list[ColumnElement[bool]]:
    """SQL conditions for a set of filters (`bbox_index=False` hides the lat index)."""
    out: list[ColumnElement[bool]] = []
    if f.bbox:
        # `lat + 0` is the same value but no index matches it: SQLite then walks the
        # primary key and stops after one page, which beats the index for large boxes.
        lat = r.lat if bbox_index else r.lat + 0
        out += [
            lat.between(f.bbox.min_lat, f.bbox.max_lat),
            r.long.between(f.bbox.min_long, f.bbox.max_long),
        ]
    for column, values in (
        (r.status, f.statuses),
        (r.service_code, f.service_codes),
        (r.agency_responsible, f.agencies),
        (r.dataset, f.datasets),
    ):
        if values:
            out.append(column.in_(values))
    if f.since:
        out.append(r.requested_datetime >= naive_utc(f.since))
    if f.until:
        out.append(r.requested_datetime < naive_utc(f.until))
    if f.q:
        pattern = f"%{_escape_like(f.q)}%"
        out.append(
            or_(
                r.description.ilike(pattern, escape="\\"),
                r.address.ilike(pattern, escape="\\"),
                r.service_name.ilike(pattern, escape="\\"),
            )
        )
    return out


def request_page(
    conn: Connection, f: RequestFilters, limit: int, after_pk: int | None
) -> tuple[Sequence[Any], int | None]:
    """One keyset page ordered by storage key; returns rows and the next cursor (or None)."""
    where = conditions(f, bbox_index=_small_bbox(conn, f))
    if after_pk is not None:
        where.append(r.pk > after_pk)
    query = select(requests).where(and_(True, *where)).order_by(r.pk).limit(limit + 1)
    rows = conn.execute(query).all()
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].pk
    return rows, None


SMALL_BBOX_FRACTION = 0.1
# Other filters make matches rarer, so a primary-key walk must read further per page.
SMALL_BBOX_FRACTION_FILTERED = 0.5


def _small_bbox(conn: Connection, f: RequestFilters) -> bool:
    """Should a page query use the lat/long index? (SQLite has no range statistics.)

    Small boxes: yes. Boxes spanning a large share of the data's latitudes: a primary-key
    walk finds a page of matches sooner (measured in bench/map_api.py). PostgreSQL has
    histograms and decides for itself.
    """
    if f.bbox is None or conn.dialect.name != "sqlite":
        return True
    # Two scalar subqueries: SQLite answers a lone min() or max() from the index ends.
    low_q = select(func.min(r.lat)).scalar_subquery()
    high_q = select(func.max(r.lat)).scalar_subquery()
    low, high = conn.execute(select(low_q, high_q)).one()
    if low is None or high <= low:
        return True
    span = min(f.bbox.max_lat, high) - max(f.bbox.min_lat, low)
    filtered = f.statuses or f.service_codes or f.agencies or f.datasets or f.q
    limit = SMALL_BBOX_FRACTION_FILTERED if filtered else SMALL_BBOX_FRACTION
    return bool(span / (high - low) < limit)


def _cell(column: Any, origin: float, size: float, dialect: str) -> Any:
    shifted = (column - origin) / size
    # CAST truncates in SQLite (values here are >= 0) but rounds in PostgreSQL.
    return func.floor(shifted) if dialect == "postgresql" else cast(shifted, Integer)


def clusters(
    conn: Connection, f: RequestFilters, cell_deg: float, *, use_aggregates: bool = True
) -> list[dict[str, Any]]:
    """Counts per grid cell of `cell_deg` degrees by dataset and by status, with each cell's
    centroid. `by_status` counts the records that have a status (not crime incidents, stored
    as closed: see connect311_contracts.datasets), `by_dataset` every record.

    With a bbox, every cell the box touches is counted whole (no cut-off cells at the edges),
    so the answer equals the whole-city aggregation restricted to those cells. Cells made of
    whole counted cells (zoom 12 or 16), filtered by status and dataset at most, come from
    the aggregate table.
    """
    source = cell_source(cell_deg)
    # The cell table has no agency column: an agency filter (embeds) must count requests.
    if use_aggregates and source is not None and aggregates.serves_cells(f):
        rows: Sequence[Any] = aggregates.cell_rows(conn, f, *source, cell_deg)
    else:
        rows = _cluster_rows(conn, f, cell_deg)
    return _cells(rows, cell_deg)


def _cluster_rows(conn: Connection, f: RequestFilters, cell_deg: float) -> Sequence[Any]:
    dialect = conn.dialect.name
    cx = _cell(r.long, -180.0, cell_deg, dialect).label("cx")
    cy = _cell(r.lat, -90.0, cell_deg, dialect).label("cy")
    where = conditions(replace(f, bbox=None))
    if f.bbox is not None:
        x0, y0, x1, y1 = grid_range(f.bbox, cell_deg)
        # Coordinate ranges let the lat/long index work; cell numbers make edges exact.
        snapped = BBox(
            -180.0 + x0 * cell_deg,
            -90.0 + y0 * cell_deg,
            -180.0 + (x1 + 1) * cell_deg,
            -90.0 + (y1 + 1) * cell_deg,
        )
        where += conditions(RequestFilters(bbox=snapped))
        where += [cx.between(x0, x1), cy.between(y0, y1)]
    query = (
        select(cx, cy, r.dataset, r.status, func.count(), func.avg(r.lat), func.avg(r.long))
        .where(and_(True, *where))
        .group_by(cx, cy, r.dataset, r.status)
    )
    return conn.execute(query).all()


def _cells(rows: Sequence[Any], cell_deg: float) -> list[dict[str, Any]]:
    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for x, y, dataset, status, count, lat, long in rows:
        cell = cells.setdefault(
            (int(x), int(y)),
            {"count": 0, "by_status": {}, "by_dataset": {}, "lat_sum": 0.0, "long_sum": 0.0},
        )
        cell["count"] += count
        if dataset_words(dataset).has_status:
            cell["by_status"][status] = cell["by_status"].get(status, 0) + count
        cell["by_dataset"][dataset] = cell["by_dataset"].get(dataset, 0) + count
        cell["lat_sum"] += float(lat) * count
        cell["long_sum"] += float(long) * count
    out = []
    for (x, y), cell in sorted(cells.items()):
        n = cell["count"]
        out.append(
            {
                "cell": [x, y],
                "count": n,
                # Sorted: equal cells, equal JSON (a tile's ETag), whatever the row order.
                "by_status": dict(sorted(cell["by_status"].items())),
                "by_dataset": dict(sorted(cell["by_dataset"].items())),
                "lat": cell["lat_sum"] / n,
                "long": cell["long_sum"] / n,
                "bounds": [
                    -180.0 + x * cell_deg,
                    -90.0 + y * cell_deg,
                    -180.0 + (x + 1) * cell_deg,
                    -90.0 + (y + 1) * cell_deg,
                ],
            }
        )
    return out


def one_request(conn: Connection, service_request_id: str) -> Row[Any] | None:
    """The current state of one request, or None."""
    query = select(requests).where(r.service_request_id == service_request_id)
    return conn.execute(query).first()


def timeline(conn: Connection, service_request_id: str) -> Sequence[Any]:
    """Every recorded event of a request, oldest first."""
    h = history.c
    query = (
        select(history)
        .where(h.service_request_id == service_request_id)
        .order_by(h.source_at, h.occurred_at, h.event_id)
    )
    return conn.execute(query).all()


def stats(
    conn: Connection,
    f: RequestFilters,
    interval: core_stats.Interval,
    now: datetime | None = None,
    *,
    use_aggregates: bool = True,
) -> dict[str, Any]:
    """Opened vs resolved per agency per period, backlog and time to close (SQL does counting).

    Series and time to close on agency, dataset and status filters alone come from the
    aggregate tables; backlog ages are measured from `now` (the moment of the answer, stated
    in it). Without a dataset filter only records with a lifecycle count (`with_lifecycle`).
    """
    f = with_lifecycle(conn, f)
    if use_aggregates and aggregates.serves(f) and f.bbox is None:
        opened, open_days, resolved, minutes = aggregates.stats_rows(conn, f)
    else:
        opened, open_days, resolved, minutes = _stats_rows(conn, f)
    moment = naive_utc(now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "interval": interval.value,
        "as_of": iso(moment),
        "series": core_stats.opened_resolved(opened, resolved, interval),
        "backlog": core_stats.backlog(open_days, _open_times(conn, f), moment),
        "time_to_close": core_stats.time_to_close(minutes),
    }


def with_lifecycle(conn: Connection, f: RequestFilters) -> RequestFilters:
    """The filters, limited to datasets with a lifecycle when they name no dataset.

    A crime incident is stored as closed at its own time: counted with requests it would be
    "resolved" at once, in no time, lifting every resolution figure. Asked for by name
    (`dataset=crime`), incidents are counted as what they are.
    """
    if f.datasets:
        return f
    present = [str(row[0]) for row in aggregates.kind_counts(conn, "dataset")]
    lifecycle = tuple(d for d in present if dataset_words(d).has_status)
    if len(lifecycle) == len(present):
        return f  # nothing to leave out: no filter, so the answer stays as it was
    return replace(f, datasets=lifecycle or (SERVICE_REQUESTS,))


def _stats_rows(conn: Connection, f: RequestFilters) -> aggregates.StatsRows:
    where = conditions(f)
    agency = r.agency_responsible
    closed = r.status == "closed"
    # One pass gives both 'opened per day' and the open backlog's days.
    is_open = (r.status != "closed").label("is_open")
    by_day = conn.execute(
        select(agency, r.opened_day, is_open, func.count())
        .where(*where)
        .group_by(agency, r.opened_day, is_open)
    ).all()
    opened = [(a, day, n) for a, day, _open, n in by_day]
    open_days = [(a, day, n) for a, day, still_open, n in by_day if still_open]
    resolved = conn.execute(
        select(agency, r.closed_day, func.count())
        .where(closed, r.closed_day.is_not(None), *where)
        .group_by(agency, r.closed_day)
    ).all()
    bucket = _close_minutes(conn).label("minutes")
    minutes = conn.execute(
        select(agency, bucket, func.count())
        .where(closed, r.closed_datetime.is_not(None), *where)
        .group_by(agency, bucket)
    ).all()
    return opened, open_days, [tuple(x) for x in resolved], [tuple(x) for x in minutes]


def _open_times(conn: Connection, f: RequestFilters) -> Callable[[str | None, str], list[datetime]]:
    """When each open request of one agency and day was made (index: agency, opened_day)."""
    where = [r.status != "closed", *conditions(f)]

    def times_of(agency: str | None, day: str) -> list[datetime]:
        # The aggregates store a missing agency as "": both mean NULL in `requests`.
        same = r.agency_responsible.is_(None) if not agency else r.agency_responsible == agency
        query = select(r.requested_datetime).where(same, r.opened_day == day, *where)
        return list(conn.execute(query).scalars())

    return times_of


def _close_minutes(conn: Connection) -> ColumnElement[int]:
    """core.stats.close_bucket_minutes of each request, in SQL (same truncation rules)."""
    if conn.dialect.name == "postgresql":
        gap = func.date_trunc("second", r.closed_datetime) - func.date_trunc(
            "second", r.requested_datetime
        )
        seconds: ColumnElement[int] = cast(extract("epoch", gap), BigInteger)
    else:  # strftime('%s') is whole epoch seconds, truncated like seconds_between
        seconds = cast(func.strftime("%s", r.closed_datetime), BigInteger) - cast(
            func.strftime("%s", r.requested_datetime), BigInteger
        )
    return case(
        (seconds < core_stats.EXACT_MINUTES_BELOW_S, seconds // 60),
        else_=seconds // 3600 * 60,
    )


def open311_requests(
    conn: Connection,
    ids: tuple[str, ...],
    f: RequestFilters,
    page: int,
    page_size: int,
) -> Sequence[Any]:
    """Requests for the GeoReport v2 list: newest first, paged."""
    where = conditions(f)
    if ids:
        where.append(r.service_request_id.in_(ids))
    query = (
        select(requests)
        .where(and_(True, *where))
        .order_by(desc(r.requested_datetime), r.pk)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return conn.execute(query).all()


def preview_candidates(conn: Connection, f: RequestFilters, since: datetime) -> Sequence[Any]:
    """History events since a time, joined with where and what their request is."""
    h = history.c
    query = (
        select(h.service_request_id, h.event_type, h.source_at, r.lat, r.long)
        .join(requests, r.service_request_id == h.service_request_id)
        .where(h.source_at >= naive_utc(since), *conditions(f))
    )
    return conn.execute(query).all()


def first_requested_at(conn: Connection) -> datetime | None:
    """When the city's first stored request was made (the start of the data we have)."""
    return conn.execute(select(func.min(r.requested_datetime))).scalar()


def newest_source_at(conn: Connection) -> datetime | None:
    """The latest source time in the history (anchor for 'the last 90 days of data')."""
    return conn.execute(select(func.max(history.c.source_at))).scalar()
