"""The department view as CSV: one row per department (in rank order), then all departments.

The same numbers as the page, in the units the API uses (durations in whole seconds,
shares in percent to one decimal); an empty cell where the page shows a dash (no value).
Department names come from feeds: a name starting with = + - @ would be a formula to a
spreadsheet, so such a cell is prefixed with an apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

__all__ = ["COLUMNS", "department_csv"]

Getter = Callable[[dict[str, Any]], Any]


def _prev(key: str) -> Getter:
    return lambda row: row["previous"][key]


def _key(key: str) -> Getter:
    return lambda row: row.get(key)


COLUMNS: tuple[tuple[str, Getter], ...] = (
    ("rank", _key("rank")),
    ("department", _key("agency")),
    ("opened", _key("opened")),
    ("closed", _key("closed")),
    ("closed_with_target", _key("closed_with_target")),
    ("closed_within_target", _key("closed_within_target")),
    ("share_within_target_pct", _key("share_within_target_pct")),
    ("share_change_pts", _key("share_change_pts")),
    ("median_close_seconds", _key("median_close_seconds")),
    ("p90_close_seconds", _key("p90_close_seconds")),
    ("previous_opened", _prev("opened")),
    ("previous_closed", _prev("closed")),
    ("previous_share_within_target_pct", _prev("share_within_target_pct")),
    ("previous_median_close_seconds", _prev("median_close_seconds")),
    ("open_now", _key("open")),
    ("age_0_7_days", _key("age_0_7")),
    ("age_8_30_days", _key("age_8_30")),
    ("age_31_90_days", _key("age_31_90")),
    ("age_over_90_days", _key("age_over_90")),
    ("overdue_now", _key("overdue")),
    ("dated_in_future", _key("dated_in_future")),
)
TRAILER = ("period_start", "period_end", "as_of")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"  # shares and changes: one decimal, as the page shows them
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def department_csv(view: dict[str, Any]) -> str:
    """The CSV text of a department view (`departments.department_view`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in COLUMNS] + list(TRAILER))
    trailer = [view["period"]["start"], view["period"]["end"], view["as_of"]]
    for row in [*view["departments"], view["total"]]:
        writer.writerow([_cell(get(row)) for _, get in COLUMNS] + trailer)
    return out.getvalue()
