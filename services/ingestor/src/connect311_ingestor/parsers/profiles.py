"""Column profiles: how one city's export (Socrata CSV/JSON, CKAN, JSONL) maps to a request.

A profile is a JSON or TOML mapping file a user can write (`load_profile(path)`), or one of
the built-ins (`BUILTIN_PROFILES`: nyc, chicago, boston, open311, seeclickfix). Example (TOML)::

    source = "springfield"          # feed name: request ids become "springfield:<id>"
    dataset = "311"                 # optional, default "311" (e.g. "code_violations")
    datasets_by_agency = { "Buildings" = "code_violations" }  # optional: agency -> dataset
    timezone = "America/New_York"   # IANA name; dates without an offset are local time
    date_formats = ["%m/%d/%Y %I:%M:%S %p"]  # optional; ISO 8601 is always tried first
    zipcode_digits = 5              # optional: zero-pad numeric zips (2113 -> "02113")
    placeholder_coordinates = [[42.3594, -71.0587]]  # optional: "no real location" points
    exclude_service_codes = ["TEST"]        # optional: categories left out (counted as
    exclude_service_names = ["Test issue"]  # "excluded", never published); names: any case
    missing_values = ["NA"]         # optional: cell values that mean "empty" (R writes NA)
    drop_address_notes = true       # optional: "1 Elm St (Unit 3)" -> "1 Elm St" (`cells`)
    bounds = [[42.98, -76.21], [43.09, -76.07]]  # optional [[south, west], [north, east]]:
                                    # points outside are rejected as "outside_bounds"
    point_events = false            # true: no lifecycle (crime), each record is published
                                    # closed at its own time, with no status word
    id_columns = ["time", "address", "offence"]  # instead of columns.id, for exports without
                                    # one: a digest of these values (see `derived_ids`)
    generalise_address = "block"    # optional: "1234 MAIN ST" -> "1200 block of MAIN ST"
    coordinate_decimals = 3         # optional: round lat/long (3 decimals ~ 110 m)

    [columns]                       # column names in the export; a list = first non-empty
    id = "case_id"                  # required
    requested_datetime = "opened"   # required
    lat = "latitude"                # required
    long = "longitude"              # required
    status = "status"               # optional (absent: closed when a closed date is set)
    closed_datetime = "closed"      # optional, like every column below
    updated_datetime = "modified"
    expected_datetime = "due"
    service_code = "type_code"
    service_name = ["type", "category"]
    agency_responsible = "department"
    description = "details"
    status_notes = "resolution"     # the city's note on the request (resolution text)
    closed_reason_text = "resolution"  # text searched for duplicate/cancelled/referred
    duplicate_flag = "is_duplicate"    # true/false column: closed as a duplicate
    address = ["address", "intersection"]
    zipcode = "zip"
    media_url = "photo"

    [statuses]                      # optional: raw status (case-insensitive) -> status
    "Canceled" = "closed/cancelled" # "<open|acknowledged|in_progress|closed>[/<reason>]"
    "Assigned" = "acknowledged"     # reasons: fixed, duplicate, cancelled, referred

    [group]                         # optional: several rows per record, folded by id
    status = "violation_status"     # each row's own status: open while any row is open
    item = "violation"              # each row's line in the description
    label = "Violations"            # what the rows are, heading that list

Status words not in `statuses` use the shared table in `statuses.STATUS_WORDS`. How rows
are folded: `folding`; addresses and coordinates generalised: `generalise`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_ingestor.exclusions import Exclusion
from connect311_ingestor.parsers.dates import zone
from connect311_ingestor.parsers.statuses import StatusMapping

ColumnSpec = str | list[str] | None


class Columns(BaseModel):
    """Which export column holds each request field (a list: first non-empty wins)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: ColumnSpec = None  # required unless the profile derives ids (`id_columns`)
    requested_datetime: ColumnSpec
    lat: ColumnSpec
    long: ColumnSpec
    status: ColumnSpec = None
    closed_datetime: ColumnSpec = None
    updated_datetime: ColumnSpec = None
    expected_datetime: ColumnSpec = None
    service_code: ColumnSpec = None
    service_name: ColumnSpec = None
    agency_responsible: ColumnSpec = None
    description: ColumnSpec = None
    status_notes: ColumnSpec = None
    closed_reason_text: ColumnSpec = None
    duplicate_flag: ColumnSpec = None
    address: ColumnSpec = None
    zipcode: ColumnSpec = None
    media_url: ColumnSpec = None


def column_names(spec: ColumnSpec) -> tuple[str, ...]:
    """The column names of a spec, in order (none for an unmapped field)."""
    if spec is None:
        return ()
    return (spec,) if isinstance(spec, str) else tuple(spec)


class RowGroup(BaseModel):
    """`[group]`: an export with several rows per record, folded by id (see `folding`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: ColumnSpec = None
    item: ColumnSpec = None
    label: str = Field(default="Rows", min_length=1, max_length=40)


def _status_rule(text: str) -> StatusMapping:
    status_text, _, reason_text = text.strip().lower().partition("/")
    try:
        status = RequestStatus(status_text.strip())
        reason = ClosedReason(reason_text.strip()) if reason_text.strip() else None
    except ValueError:
        raise ValueError(
            f"status rule {text!r} must be '<open|acknowledged|in_progress|closed>"
            "[/<fixed|duplicate|cancelled|referred>]'"
        ) from None
    if reason is not None and status is not RequestStatus.CLOSED:
        raise ValueError(f"status rule {text!r}: only a closed status has a reason")
    return StatusMapping(status, reason)


class ColumnProfile(BaseModel):
    """How one export's columns map to the canonical request (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1, max_length=100)
    dataset: str = Field(default="311", min_length=1, max_length=60)
    datasets_by_agency: dict[str, str] = Field(default_factory=dict)
    """Agency (columns.agency_responsible, any case) -> dataset, for a feed that carries
    several: a city whose code-enforcement complaints come in through 311."""
    timezone: str = "UTC"
    date_formats: tuple[str, ...] = ()
    zipcode_digits: int | None = Field(default=None, ge=1, le=10)
    placeholder_coordinates: tuple[tuple[float, float], ...] = ()
    columns: Columns
    statuses: dict[str, str] = Field(default_factory=dict)
    exclude_service_codes: tuple[str, ...] = ()
    exclude_service_names: tuple[str, ...] = ()
    missing_values: tuple[str, ...] = ()
    drop_address_notes: bool = False
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    point_events: bool = False
    id_columns: tuple[str, ...] = ()
    generalise_address: Literal["block"] | None = None
    coordinate_decimals: int | None = Field(default=None, ge=1, le=7)
    group: RowGroup | None = None

    @field_validator("bounds")
    @classmethod
    def _valid_bounds(
        cls, value: tuple[tuple[float, float], tuple[float, float]] | None
    ) -> tuple[tuple[float, float], tuple[float, float]] | None:
        if value is None:
            return None
        (south, west), (north, east) = value
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise ValueError(
                "bounds must be [[south, west], [north, east]] with south < north and "
                "west < east, in degrees"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ColumnProfile:
        if (self.columns.id is None) == (not self.id_columns):
            raise ValueError(
                "give columns.id (the export's record id) or id_columns (columns whose "
                "values name a record, for exports without an id), not both or neither"
            )
        if self.group is not None and self.columns.id is None:
            raise ValueError("group folds rows by columns.id: it cannot use id_columns")
        if self.point_events and (
            self.group is not None or self.columns.status or self.columns.closed_datetime
        ):
            raise ValueError(
                "point_events records have no lifecycle: remove columns.status, "
                "columns.closed_datetime and group"
            )
        return self

    def read_columns(self) -> tuple[str, ...]:
        """Every export column this profile reads, in a fixed order (nothing else is kept)."""
        specs = [spec for _, spec in self.columns]
        if self.group is not None:
            specs += [self.group.status, self.group.item]
        names = [name for spec in specs for name in column_names(spec)]
        return tuple(dict.fromkeys([*names, *self.id_columns]))

    def dataset_of(self, agency: object) -> str:
        """The dataset of a record handled by `agency` (`dataset` unless mapped)."""
        if agency is not None and self.datasets_by_agency:
            wanted = str(agency).strip().casefold()
            for name, dataset in self.datasets_by_agency.items():
                if name.casefold() == wanted:
                    return dataset
        return self.dataset

    def exclusion(self) -> Exclusion:
        """The categories this export leaves out (test issues), see `exclusions`."""
        return Exclusion.of(self.exclude_service_codes, self.exclude_service_names)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("statuses")
    @classmethod
    def _valid_rules(cls, value: dict[str, str]) -> dict[str, str]:
        for rule in value.values():
            _status_rule(rule)
        return {key.strip().lower(): rule for key, rule in value.items()}

    def status_rule(self, raw: str) -> StatusMapping | None:
        """The profile's own mapping for a raw status word, if it has one."""
        rule = self.statuses.get(raw.strip().lower())
        return _status_rule(rule) if rule is not None else None


def load_profile(path: Path) -> ColumnProfile:
    """A profile from a user's JSON or TOML mapping file (ValueError says what is wrong)."""
    text = path.read_text(encoding="utf-8")
    data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a profile must be a mapping of settings")
    return ColumnProfile.model_validate(data)


_NYC_FORMATS = ("%m/%d/%Y %I:%M:%S %p",)

BUILTIN_PROFILES: dict[str, ColumnProfile] = {
    # NYC Open Data "311 Service Requests from 2010 to Present" (Socrata export, 41+ columns).
    "nyc": ColumnProfile(
        source="nyc311",
        timezone="America/New_York",
        date_formats=_NYC_FORMATS,
        zipcode_digits=5,
        columns=Columns(
            id="Unique Key",
            requested_datetime="Created Date",
            closed_datetime="Closed Date",
            updated_datetime="Resolution Action Updated Date",
            expected_datetime="Due Date",
            status="Status",
            service_code="Complaint Type",
            service_name="Complaint Type",
            agency_responsible=["Agency Name", "Agency"],
            description="Descriptor",
            status_notes="Resolution Description",
            closed_reason_text="Resolution Description",
            address=["Incident Address", "Intersection Street 1", "Landmark"],
            zipcode="Incident Zip",
            lat="Latitude",
            long="Longitude",
        ),
        statuses={"Assigned": "acknowledged", "Pending": "open", "Started": "in_progress"},
    ),
    # Chicago Data Portal "311 Service Requests" (Socrata API field names). The `location`
    # column is a Python repr of a dict: latitude/longitude columns are used instead.
    # 41.871831277993564, -87.67984621876099 is the 311 City Services centre (2111 W
    # Lexington St), where "311 INFORMATION ONLY CALL" records are placed: not a location.
    "chicago": ColumnProfile(
        source="chicago311",
        timezone="America/Chicago",
        zipcode_digits=5,
        placeholder_coordinates=((41.871831277993564, -87.67984621876099),),
        columns=Columns(
            id="sr_number",
            requested_datetime="created_date",
            closed_datetime="closed_date",
            updated_datetime="last_modified_date",
            status="status",
            service_code="sr_short_code",
            service_name="sr_type",
            agency_responsible=["owner_department", "created_department"],
            duplicate_flag="duplicate",
            address="street_address",
            zipcode="zip_code",
            lat="latitude",
            long="longitude",
        ),
        statuses={"Completed": "closed/fixed", "Canceled": "closed/cancelled"},
    ),
    # Analyze Boston "311 Service Requests" (CKAN export). 42.3594, -71.0587 is the point
    # Boston gives cases it could not geocode (e.g. "INTERSECTION of ..."): not a location.
    "boston": ColumnProfile(
        source="boston311",
        timezone="America/New_York",
        zipcode_digits=5,
        placeholder_coordinates=((42.3594, -71.0587),),
        columns=Columns(
            id="case_enquiry_id",
            requested_datetime="open_dt",
            closed_datetime="closed_dt",
            expected_datetime="target_dt",
            status="case_status",
            service_code="type",
            service_name="type",
            agency_responsible=["subject", "department"],
            description="case_title",
            status_notes="closure_reason",
            closed_reason_text="closure_reason",
            address=["location", "location_street_name"],
            zipcode="location_zipcode",
            lat="latitude",
            long="longitude",
            media_url="submittedphoto",
        ),
    ),
    # Open311 GeoReport field names (e.g. an export of a GeoReport server), dates ISO 8601.
    "open311": ColumnProfile(
        source="open311",
        columns=Columns(
            id="service_request_id",
            requested_datetime="requested_datetime",
            updated_datetime="updated_datetime",
            expected_datetime="expected_datetime",
            closed_datetime="closed_datetime",
            status="status",
            service_code="service_code",
            service_name="service_name",
            agency_responsible="agency_responsible",
            description="description",
            status_notes="status_notes",
            closed_reason_text="status_notes",
            address=["address", "address_string"],
            zipcode="zipcode",
            lat="lat",
            long="long",
            media_url="media_url",
        ),
    ),
    # SeeClickFix API v2 issue field names. A saved `GET /api/v2/issues` page (.json) is read
    # by the SeeClickFix parser, like the poller (comments, request_type): `sources.files`.
    "seeclickfix": ColumnProfile(
        source="seeclickfix",
        columns=Columns(
            id="id",
            requested_datetime="created_at",
            updated_datetime="updated_at",
            closed_datetime="closed_at",
            status="status",
            service_name="summary",
            description=["description", "summary"],
            address="address",
            lat="lat",
            long="lng",
        ),
    ),
}


def get_profile(name_or_path: str | Path) -> ColumnProfile:
    """A built-in profile by name, or one loaded from a JSON/TOML file path."""
    key = str(name_or_path).strip().lower()
    if key in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[key]
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(
            f"no profile {str(name_or_path)!r}: use one of {', '.join(sorted(BUILTIN_PROFILES))} "
            "or the path of a JSON/TOML mapping file"
        )
    return load_profile(path)
