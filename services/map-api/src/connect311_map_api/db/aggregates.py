"""Aggregate tables: apply deltas in the writer's transaction, rebuild from `requests`."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, Table, case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from connect311_map_api.core.aggregates import (
    CLOSED,
    FINE_CELL,
    FINE_ZOOM,
    MICRO,
    Key,
    contributions,
    facts,
    merge,
)
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox, grid_index, grid_range
from connect311_map_api.db.tables import (
    agg_cells,
    agg_close_minutes,
    agg_kinds,
    agg_meta,
    agg_opened,
    agg_resolved,
    requests,
)

log = logging.getLogger(__name__)
VERSION = 5  # bump when the layout or the counting rules change: the next start rebuilds
# 3: cells per dataset (a crime incident is no closed request in a zoomed-out cell)
# 4: kinds (the category, department and dataset lists without a scan); stats per dataset
#    (crime incidents, stored as closed, are no resolved requests)
# 5: cells at zoom 16 too (street tiles' groups without a scan)
TABLES: dict[str, tuple[Table, tuple[str, ...], tuple[str, ...]]] = {
    "opened": (agg_opened, ("agency", "dataset", "day", "status"), ("n",)),
    "resolved": (agg_resolved, ("agency", "dataset", "day"), ("n",)),
    "close_minutes": (agg_close_minutes, ("agency", "dataset", "minutes"), ("n",)),
    "cells": (
        agg_cells,
        ("zoom", "cx", "cy", "dataset", "status"),
        ("n", "lat_micro", "long_micro"),
    ),
    "kinds": (agg_kinds, ("dataset", "agency", "service_code", "service_name"), ("n",)),
}
FACT_COLUMNS = (
    requests.c.agency_responsible,
    requests.c.dataset,
    requests.c.opened_day,
    requests.c.status,
    requests.c.closed_day,
    requests.c.requested_datetime,
    requests.c.closed_datetime,
    requests.c.lat,
    requests.c.long,
    requests.c.service_code,
    requests.c.service_name,
)


def _insert(conn: Connection, table: Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def apply(conn: Connection, deltas: Mapping[Key, tuple[int, ...]]) -> None:
    """Add the deltas to their aggregate rows (created at first use), in the caller's txn."""
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (name, key), values in deltas.items():
        _, key_cols, value_cols = TABLES[name]
        by_table[name].append(dict(zip((*key_cols, *value_cols), (*key, *values), strict=True)))
    for name in sorted(by_table):  # a fixed order: concurrent writers lock tables alike
        table, key_cols, value_cols = TABLES[name]
        rows = sorted(by_table[name], key=lambda row: tuple(row[c] for c in key_cols))
        statement = _insert(conn, table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c[c] for c in key_cols],
            set_={c: table.c[c] + statement.excluded[c] for c in value_cols},
        )
        conn.execute(statement, rows)


def rebuild(conn: Connection) -> int:
    """Recount every aggregate from `requests` (in the caller's transaction); rows read."""
    if conn.dialect.name == "postgresql":
        # Writers of `requests` wait until the recount commits, so none slips in between.
        conn.execute(text("LOCK TABLE requests IN SHARE MODE"))
    for table, _, _ in TABLES.values():
        conn.execute(delete(table))  # on SQLite this takes the write lock first
    totals: dict[Key, tuple[int, ...]] = {}
    seen = 0
    for row in conn.execute(select(*FACT_COLUMNS)).mappings():
        merge(totals, contributions(facts(row)))
        seen += 1
    apply(conn, totals)
    _mark(conn)
    return seen


def _mark(conn: Connection) -> None:
    statement = _insert(conn, agg_meta).values(name="aggregates", version=VERSION)
    conn.execute(
        statement.on_conflict_do_update(index_elements=[agg_meta.c.name], set_={"version": VERSION})
    )


def ensure_built(engine: Engine) -> None:
    """Rebuild the aggregates when they were never built, or built by another layout."""
    with engine.connect() as conn:
        built = conn.execute(
            select(agg_meta.c.version).where(agg_meta.c.name == "aggregates")
        ).scalar()
    if built == VERSION:
        return
    with engine.begin() as conn:  # a fresh transaction that writes first (SQLite: no upgrade)
        if built is not None:
            # Built by another layout: the tables hold only counts, so they are made again
            # in this one (create_all never changes a table that exists).
            for table, _, _ in TABLES.values():
                table.drop(conn, checkfirst=True)
                table.create(conn)
        seen = rebuild(conn)
    log.info("aggregates rebuilt from %d stored requests", seen)


def serves(f: RequestFilters) -> bool:
    """True when the aggregates can answer for these filters (agency, dataset, status)."""
    return not (f.service_codes or f.q or f.since or f.until)


def serves_cells(f: RequestFilters) -> bool:
    """True when the cell table can answer (status and dataset only: it has no agency)."""
    return not (f.service_codes or f.agencies or f.q or f.since or f.until)


StatsRows = tuple[list[Any], list[Any], list[Any], list[Any]]


def stats_rows(conn: Connection, f: RequestFilters) -> StatsRows:
    """(agency, day, n) opened and still open, resolved per day, and (agency, minutes, n)."""
    o = agg_opened.c
    where = [
        o.n > 0,
        *_in(o.agency, f.agencies),
        *_in(o.dataset, f.datasets),
        *_in(o.status, f.statuses),
    ]
    open_n = func.sum(case((o.status != CLOSED, o.n), else_=0))
    by_day = conn.execute(
        select(o.agency, o.day, func.sum(o.n), open_n).where(*where).group_by(o.agency, o.day)
    ).all()
    opened = [(a, day, int(n)) for a, day, n, _ in by_day]
    still_open = [(a, day, int(n)) for a, day, _, n in by_day if n]
    if f.statuses and CLOSED not in f.statuses:
        return opened, still_open, [], []
    rs, ms = agg_resolved.c, agg_close_minutes.c
    resolved = conn.execute(
        select(rs.agency, rs.day, func.sum(rs.n))
        .where(rs.n > 0, *_in(rs.agency, f.agencies), *_in(rs.dataset, f.datasets))
        .group_by(rs.agency, rs.day)
    ).all()
    minutes = conn.execute(
        select(ms.agency, ms.minutes, func.sum(ms.n))
        .where(ms.n > 0, *_in(ms.agency, f.agencies), *_in(ms.dataset, f.datasets))
        .group_by(ms.agency, ms.minutes)
    ).all()
    return (
        opened,
        still_open,
        [(a, day, int(n)) for a, day, n in resolved],
        [(a, m, int(n)) for a, m, n in minutes],
    )


def cell_rows(
    conn: Connection, f: RequestFilters, zoom: int, factor: int, cell_deg: float
) -> list[Any]:
    """(x, y, dataset, status, count, mean lat, mean long) per cell of `factor` x `factor`
    counted cells of `zoom`."""
    c = agg_cells.c
    where = [c.zoom == zoom, c.n > 0, *_in(c.status, f.statuses), *_in(c.dataset, f.datasets)]
    if f.bbox is not None:
        x0, y0, x1, y1 = grid_range(f.bbox, cell_deg)
        where += [
            c.cx.between(x0 * factor, (x1 + 1) * factor - 1),
            c.cy.between(y0 * factor, (y1 + 1) * factor - 1),
        ]
    sums: dict[tuple[int, int, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    columns = (c.cx, c.cy, c.dataset, c.status, c.n, c.lat_micro, c.long_micro)
    for cx, cy, dataset, status, n, lat, long in conn.execute(select(*columns).where(*where)):
        acc = sums[cx // factor, cy // factor, dataset, status]
        acc[0] += n
        acc[1] += lat
        acc[2] += long
    return [
        (x, y, dataset, status, n, lat / MICRO / n, long / MICRO / n)
        for (x, y, dataset, status), (n, lat, long) in sums.items()
    ]


def kind_counts(
    conn: Connection, *columns: str, datasets: tuple[str, ...] = ()
) -> list[tuple[Any, ...]]:
    """(values of the named `agg_kinds` columns..., requests) for every present combination
    whose first column is known (of these datasets only, when given), in column order: what a
    GROUP BY over `requests` gives, from a few hundred rows instead of every request."""
    cols = [agg_kinds.c[name] for name in columns]
    query = (
        select(*cols, func.sum(agg_kinds.c.n))
        .where(agg_kinds.c.n > 0, cols[0] != "", *_in(agg_kinds.c.dataset, datasets))
        .group_by(*cols)
        .order_by(*cols)
    )
    return [(*(v or None for v in row[:-1]), int(row[-1])) for row in conn.execute(query)]


def inner_count(conn: Connection, f: RequestFilters, box: BBox) -> int:
    """Records (of these filters: status and dataset at most, see serves_cells) in the
    zoom-16 cells lying wholly inside the box: a lower bound of the box's count, read from
    a few hundred rows. Cells on the box's edges are left out, whatever their share."""
    c = agg_cells.c
    x0, y0, x1, y1 = inner_cells(box)
    if x0 > x1 or y0 > y1:
        return 0
    query = select(func.coalesce(func.sum(c.n), 0)).where(
        c.zoom == FINE_ZOOM,
        c.cx.between(x0, x1),
        c.cy.between(y0, y1),
        *_in(c.status, f.statuses),
        *_in(c.dataset, f.datasets),
    )
    return int(conn.execute(query).scalar_one())


def inner_cells(box: BBox) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive: the zoom-16 cells lying wholly inside the box (none when
    x0 > x1 or y0 > y1). The cells the box's edges cross are left out, whatever their share."""
    return (
        grid_index(box.min_long, -180.0, FINE_CELL) + 1,
        grid_index(box.min_lat, -90.0, FINE_CELL) + 1,
        grid_index(box.max_long, -180.0, FINE_CELL) - 1,
        grid_index(box.max_lat, -90.0, FINE_CELL) - 1,
    )


def _in(column: Any, values: tuple[str, ...]) -> list[Any]:
    return [column.in_(values)] if values else []
