"""Response models of the department view (documentation of /api/stats/departments)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PeriodNumbers(BaseModel):
    """Opened, closed and closes within target in one window (durations in seconds)."""

    opened: int = Field(description="Requests made in the window")
    closed: int = Field(description="Requests closed in the window (and closed now)")
    closed_with_target: int = Field(description="Of those, closes that had a due date")
    closed_within_target: int = Field(description="Of those, closed at or before the due date")
    share_within_target_pct: float | None = Field(
        description="closed_within_target / closed_with_target in percent, one decimal"
    )
    median_close_seconds: int | None
    p90_close_seconds: int | None


class DepartmentRow(PeriodNumbers):
    """One department: the period, the one before it, and the open backlog now."""

    agency: str
    rank: int | None = Field(
        default=None,
        description="1 = highest share closed within target (ties: faster median, more closes)",
    )
    previous: PeriodNumbers = Field(description="The equal-length window before the period")
    share_change_pts: float | None = Field(description="Change in share, percentage points")
    open: int = Field(description="Open now (as_of)")
    age_0_7: int = Field(description="Open, 0 to 7 whole days old")
    age_8_30: int
    age_31_90: int
    age_over_90: int = Field(description="Open, 91 whole days old or more")
    overdue: int = Field(description="Open and past the due date at as_of")
    dated_in_future: int = Field(description="Open, dated after as_of: no age")


class DuePeriod(BaseModel):
    """The reporting window (UTC) and where its comparison window starts."""

    name: str
    label: str
    start: str
    end: str
    previous_start: str


class DueDateSources(BaseModel):
    """Where the due dates of the counted requests came from."""

    feed: int = Field(description="The feed's own expected_datetime")
    service_level: int = Field(description="The operator's service-levels file")
    no_target: int = Field(description="Neither: left out of the within-target share")
    feed_date_ignored: int = Field(description="Feed due date before the request was made")
    closed_without_date: int = Field(description="Made in the period, closed with no close time")


class ServiceLevelInfo(BaseModel):
    """Whether the operator configured targets."""

    configured: bool
    rules: int


class DepartmentStats(BaseModel):
    """Ranked department numbers for one period and filter set."""

    as_of: str = Field(
        description="UTC time everything is measured at: the end of the current minute (so "
        "the same all minute long, and every request made so far counts as made by then)"
    )
    period: DuePeriod
    filters: dict[str, list[str]]
    service_levels: ServiceLevelInfo
    departments: list[DepartmentRow]
    total: DepartmentRow
    due_dates: DueDateSources
