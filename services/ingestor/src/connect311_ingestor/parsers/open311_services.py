"""Open311 GeoReport v2 services lists (JSON and XML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.open311_document import FeedError, Format, document_records, truthy
from connect311_ingestor.parsers.text import clean_text

__all__ = ["Open311Service", "parse_services"]


@dataclass(frozen=True)
class Open311Service:
    """One entry of a GeoReport `services` list."""

    service_code: str
    service_name: str | None
    description: str | None
    metadata: bool
    type: str | None
    keywords: tuple[str, ...]
    group: str | None
    groups: tuple[str, ...] = ()


def _texts(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(t for t in (clean_text(i, 300) for i in items) if t)


def _service(entry: Any, index: int) -> Open311Service:
    if not isinstance(entry, Mapping):
        raise FeedError(RejectReason.UNEXPECTED_SHAPE, f"service {index + 1} is not an object.")
    code = clean_text(entry.get("service_code"), 200)
    if code is None:
        raise FeedError(RejectReason.MISSING_FIELD, f"service {index + 1} has no service_code.")
    groups_value = entry.get("groups")
    groups = _texts(
        groups_value.get("group") if isinstance(groups_value, Mapping) else groups_value
    )
    groups = groups or _texts(entry.get("group"))
    keywords = clean_text(entry.get("keywords"), 2000)
    return Open311Service(
        service_code=code,
        service_name=clean_text(entry.get("service_name"), 300),
        description=clean_text(entry.get("description")),
        metadata=truthy(entry.get("metadata")),
        type=clean_text(entry.get("type"), 60),
        keywords=tuple(k.strip() for k in keywords.split(",") if k.strip()) if keywords else (),
        group=groups[0] if groups else None,
        groups=groups,
    )


def parse_services(body: bytes, *, fmt: Format) -> list[Open311Service]:
    """The services list; FeedError(reason, detail) when the document is unusable."""
    entries = document_records(body, fmt, ("services",), "service")
    return [_service(entry, i) for i, entry in enumerate(entries)]
