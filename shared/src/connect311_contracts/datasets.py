"""The datasets the system knows by name, in the words people read (pure, no I/O).

A dataset says what kind of record a map item is: a 311 service request, a code-enforcement
case, a crime incident. Feeds name theirs in their profile (`dataset = "crime"`); these words
are the one wording of the map's layers, the sign-up form, the stats page and the emails, as
`status_words` is for statuses. A dataset not listed here is shown by its own name and
treated like 311 requests (records with a status and a lifecycle).

Crime incidents are point events: the source gives no open/closed status (the ingestor stores
them as closed at the incident time), so nothing shows them a status, a "closed" date or a
time to close: `has_status` is False.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CODE_VIOLATIONS",
    "CRIME",
    "KNOWN_DATASETS",
    "OPEN311_DATASETS",
    "SERVICE_REQUESTS",
    "DatasetWords",
    "dataset_words",
]

SERVICE_REQUESTS = "311"
CODE_VIOLATIONS = "code_violations"
CRIME = "crime"
OPEN311_DATASETS = (SERVICE_REQUESTS,)
"""What the Open311 GeoReport v2 output serves: service requests only (docs/open311.md)."""


@dataclass(frozen=True)
class DatasetWords:
    """How one dataset is named and drawn."""

    dataset: str
    label: str
    """A layer's name: "311 requests", "Code violations", "Crime"."""
    item: str
    """One record, lower case: "311 request", "code violation case", "crime incident"."""
    items: str
    """Several records, lower case: "311 requests", "code violation cases"."""
    has_status: bool
    """False for point events (crime): no status, no close date, no time to close."""
    symbol: str
    """The map marker's shape: "circle", "house" or "triangle" (never colour alone)."""
    kind_label: str
    """What the record's category is called: "Category", "Case type", "Offence"."""
    id_label: str
    """What its id is called: "Request", "Case", "Incident"."""
    description_label: str
    """What its description holds: "Description", "Violations" (one case, several)."""


KNOWN_DATASETS: dict[str, DatasetWords] = {
    SERVICE_REQUESTS: DatasetWords(
        SERVICE_REQUESTS,
        "311 requests",
        "311 request",
        "311 requests",
        True,
        "circle",
        "Category",
        "Request",
        "Description",
    ),
    CODE_VIOLATIONS: DatasetWords(
        CODE_VIOLATIONS,
        "Code violations",
        "code violation case",
        "code violation cases",
        True,
        "house",
        "Case type",
        "Case",
        "Violations",
    ),
    CRIME: DatasetWords(
        CRIME,
        "Crime",
        "crime incident",
        "crime incidents",
        False,
        "triangle",
        "Offence",
        "Incident",
        "Details",
    ),
}


def dataset_words(dataset: str) -> DatasetWords:
    """The words of a dataset; an unknown one by its own name, drawn and worded like 311."""
    known = KNOWN_DATASETS.get(dataset)
    if known is not None:
        return known
    name = " ".join(dataset.replace("_", " ").split()) or "records"
    label = name[:1].upper() + name[1:]
    return DatasetWords(
        dataset, label, "record", "records", True, "circle", "Category", "Id", "Description"
    )
