"""Service levels: the operator's targets (how long a kind of request may take), one model for
every service that needs due dates (the map API's department view, the ingestor's overdue
events), so a target means the same everywhere.

The file format is documented in deploy/service-levels.example.toml. `parse_service_levels`
is pure (parsed TOML in, `ServiceLevels` out, `ServiceLevelsError` naming where and why);
`read_service_levels` and `load` are the one place this package reads a file: the path the
caller's settings give, read again only when it changed (its modification time and size), so
targets can be adjusted without a restart.
"""

from __future__ import annotations

import math
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_DAYS",
    "MAX_HOURS",
    "ServiceLevels",
    "ServiceLevelsError",
    "Target",
    "load",
    "parse_service_levels",
    "read_service_levels",
]

MAX_DAYS = 3_650  # ten years: anything longer is a typo in the file, not a promise
MAX_HOURS = MAX_DAYS * 24
SECTIONS = ("service_code", "service_name", "agency")
TOP_KEYS = {"business_days", "holidays", "default", *SECTIONS}
TARGET_KEYS = {"days", "hours", "business_days"}


class ServiceLevelsError(ValueError):
    """The service-levels file says something that cannot be a target (message says where)."""


class Target(BaseModel):
    """One service level: whole days (calendar or business) or elapsed hours.

    A wire type too: `RequestOverdue` carries the target a request missed, so an email can
    word it in the subscriber's language ("the city's target was 5 days").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    hours: float | None = Field(default=None, gt=0, le=MAX_HOURS, allow_inf_nan=False)
    business_days: bool = False

    @model_validator(mode="after")
    def _one_unit(self) -> Target:
        if (self.days is None) == (self.hours is None):
            raise ValueError("a target is days or hours, exactly one of them")
        if self.hours is not None and self.business_days:
            raise ValueError("business_days applies to days, not hours")
        return self

    def describe(self) -> str:
        """How people say it in English: "3 business days", "8 hours", "1 day"."""
        if self.days is not None:
            kind = "business day" if self.business_days else "day"
            return f"{self.days} {kind}{'' if self.days == 1 else 's'}"
        hours = f"{self.hours:g}"
        return f"{hours} hour{'' if hours == '1' else 's'}"


@dataclass(frozen=True)
class ServiceLevels:
    """The operator's targets by category and department, in the city's time zone."""

    zone: tzinfo = UTC
    by_code: Mapping[str, Target] = field(default_factory=dict)
    by_name: Mapping[str, Target] = field(default_factory=dict)
    by_agency: Mapping[str, Target] = field(default_factory=dict)
    default: Target | None = None
    holidays: frozenset[date] = frozenset()

    @property
    def rules(self) -> int:
        """How many targets the file sets (the page says whether any are configured)."""
        extra = 1 if self.default is not None else 0
        return len(self.by_code) + len(self.by_name) + len(self.by_agency) + extra

    def target_for(
        self, service_code: str | None, service_name: str | None, agency: str | None
    ) -> Target | None:
        """The most specific target for a request's category and department (None: none)."""
        for table, value in (
            (self.by_code, service_code),
            (self.by_name, service_name),
            (self.by_agency, agency),
        ):
            if value is not None and (hit := table.get(_fold(value))) is not None:
                return hit
        return self.default


def _fold(name: str) -> str:
    return name.strip().casefold()


# ------------------------------------------------------------------ parsing the file


def parse_service_levels(data: Mapping[str, Any], zone: tzinfo = UTC) -> ServiceLevels:
    """Service levels from the parsed TOML document; ServiceLevelsError names what is wrong."""
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ServiceLevelsError(f"unknown key {unknown[0]!r}; use {', '.join(sorted(TOP_KEYS))}")
    business = data.get("business_days", False)
    if not isinstance(business, bool):
        raise ServiceLevelsError("business_days must be true or false")
    tables: dict[str, dict[str, Target]] = {}
    for section in SECTIONS:
        entries = data.get(section, {})
        if not isinstance(entries, Mapping):
            raise ServiceLevelsError(f"[{section}] must be a table of name = {{ days = N }}")
        table: dict[str, Target] = {}
        for name, spec in entries.items():
            key = _fold(str(name))
            where = f"{section}.{name!r}"
            if not key:
                raise ServiceLevelsError(f"{where}: the name is empty")
            if key in table:
                raise ServiceLevelsError(f"{where}: the same name twice (names ignore case)")
            table[key] = _target(spec, where, business)
        tables[section] = table
    default = data.get("default")
    return ServiceLevels(
        zone=zone,
        by_code=tables["service_code"],
        by_name=tables["service_name"],
        by_agency=tables["agency"],
        default=None if default is None else _target(default, "default", business),
        holidays=_holidays(data.get("holidays", [])),
    )


def _target(spec: Any, where: str, business_default: bool) -> Target:
    if not isinstance(spec, Mapping):
        raise ServiceLevelsError(f"{where}: write {{ days = N }} or {{ hours = N }}")
    unknown = sorted(set(spec) - TARGET_KEYS)
    if unknown:
        raise ServiceLevelsError(f"{where}: unknown key {unknown[0]!r}; use days, hours")
    if ("days" in spec) == ("hours" in spec):
        raise ServiceLevelsError(f"{where}: give exactly one of days or hours")
    business = spec.get("business_days", business_default)
    if not isinstance(business, bool):
        raise ServiceLevelsError(f"{where}: business_days must be true or false")
    if "days" in spec:
        days = spec["days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise ServiceLevelsError(f"{where}: days must be a whole number from 1 to {MAX_DAYS}")
        return Target(days=days, business_days=business)
    hours = spec["hours"]
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise ServiceLevelsError(f"{where}: hours must be a number")
    if not (math.isfinite(hours) and 0 < hours <= MAX_HOURS):
        raise ServiceLevelsError(f"{where}: hours must be above 0 and at most {MAX_HOURS}")
    if "business_days" in spec and business:
        # Business hours would need opening times; a day target says what is meant.
        raise ServiceLevelsError(f"{where}: business_days applies to days, not hours")
    return Target(hours=float(hours))


def _holidays(values: Any) -> frozenset[date]:
    if not isinstance(values, list):
        raise ServiceLevelsError('holidays must be a list of dates, e.g. ["2024-12-25"]')
    out: set[date] = set()
    for value in values:
        if isinstance(value, datetime) or not isinstance(value, date | str):
            raise ServiceLevelsError(f"holidays: {value!r} is not a date like 2024-12-25")
        try:
            out.add(value if isinstance(value, date) else date.fromisoformat(value))
        except ValueError as exc:
            raise ServiceLevelsError(f"holidays: {value!r} is not a date like 2024-12-25") from exc
    return frozenset(out)


# ------------------------------------------------------------------ reading the file

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[tuple[int, int], ServiceLevels]] = {}


def read_service_levels(path: Path, zone_name: str) -> ServiceLevels:
    """Parse the file; ServiceLevelsError says which file and what is wrong in it."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        return parse_service_levels(data, ZoneInfo(zone_name))
    except OSError as exc:
        raise ServiceLevelsError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ServiceLevelsError(f"{path}: not valid TOML ({exc})") from exc
    except ServiceLevelsError as exc:
        raise ServiceLevelsError(f"{path}: {exc}") from exc


def load(path: Path | None, zone_name: str) -> ServiceLevels:
    """The current targets (none without a file), re-read when the file changed."""
    if path is None:
        return ServiceLevels(zone=ZoneInfo(zone_name))
    try:
        stat = path.stat()
    except OSError as exc:
        raise ServiceLevelsError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    key, version = (str(path), zone_name), (stat.st_mtime_ns, stat.st_size)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    levels = read_service_levels(path, zone_name)
    with _lock:
        _cache[key] = (version, levels)
    return levels
