"""A street tile's groups from the sums of its counted cells (pure).

`db.tile_queries.counted_groups` sums the counted cells per (group, dataset) in the database,
with one count per status; this turns those few hundred rows into the tile's cluster entries:
per group its count, its counts by status (records that have one: not crime incidents, stored
as closed; see connect311_contracts.datasets) and by dataset, and its centre of mass, from
integer micro-degree sums (exact in any order, so equal counts always give equal bytes, and
the tile's ETag does not depend on the plan that found the rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from connect311_contracts.datasets import dataset_words
from connect311_contracts.request import RequestStatus
from connect311_map_api.core.aggregates import MICRO

__all__ = ["GROUP_STATUSES", "Entry", "cluster_entries"]

GROUP_STATUSES = tuple(sorted(s.value for s in RequestStatus))
"""The status counted in each status column of a group row, in this (sorted) order: every
status a stored request can have (the contract's enum), so the columns sum to the count."""

Entry = list[Any]
"""[lat, long, count, by_status, by_dataset]: the tile route's CLUSTER_FIELDS."""

GroupRow = tuple[Any, ...]
"""(group x, group y, dataset, n, lat sum, long sum, inner n, n per GROUP_STATUSES...):
sums in micro-degrees; `inner n` (the requests of the group's cells wholly inside the tile)
is the route's, not read here."""


def cluster_entries(rows: Iterable[GroupRow], holds: Callable[[float, float], bool]) -> list[Entry]:
    """The entries of the groups whose centre of mass the tile holds (`holds(lat, long)`),
    ordered by group (x, then y); a group's rows (one per dataset) may come in any order."""
    groups: dict[tuple[int, int], list[Any]] = {}
    has_status: dict[str, bool] = {}
    for gx, gy, dataset, n, lat, long, _inner, *counts in rows:
        counts_status = has_status.get(dataset)
        if counts_status is None:
            counts_status = has_status[dataset] = dataset_words(dataset).has_status
        by_status = (
            {s: c for s, c in zip(GROUP_STATUSES, counts, strict=True) if c}
            if counts_status
            else {}
        )
        group = groups.get((gx, gy))
        if group is None:
            groups[gx, gy] = [n, lat, long, by_status, {dataset: n}]
            continue
        group[0] += n
        group[1] += lat
        group[2] += long
        for status, count in by_status.items():
            group[3][status] = group[3].get(status, 0) + count
        group[4][dataset] = n
    out: list[Entry] = []
    for key in sorted(groups):
        n, lat_sum, long_sum, by_status, by_dataset = groups[key]
        lat, long = lat_sum / MICRO / n, long_sum / MICRO / n
        if not holds(lat, long):
            continue
        if len(by_dataset) > 1:
            # Sorted keys: equal groups, equal JSON (a tile's ETag), whatever the row order.
            # One dataset's statuses come sorted already (GROUP_STATUSES).
            by_status = dict(sorted(by_status.items()))
            by_dataset = dict(sorted(by_dataset.items()))
        out.append([round(lat, 6), round(long, 6), n, by_status, by_dataset])
    return out
