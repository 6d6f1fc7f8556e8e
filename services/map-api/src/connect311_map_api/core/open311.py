"""Open311 GeoReport v2 output: field mapping, errors and XML rendering (pure).

Close reason and the city's raw status (GeoReport v2 only knows open/closed):
- `status_notes` carries the source's own notes; when the source gave none, it carries the
  resident wording of the status ("Closed — duplicate of another request", "In progress",
  "Open (city status: Referred to Law)"), which is what the spec means by "more details on
  current status than conveyed with status alone". Plain "open"/"closed" adds nothing: null.
- With `extensions=true` (the Chicago Open311 convention), each request also carries
  `extended_attributes` with the machine-readable `status` (open, acknowledged, in_progress,
  closed), `closed_reason` (fixed, duplicate, cancelled, referred or null) and `raw_status`.
  It is opt-in so that clients that refuse unknown elements get the plain spec by default.
"""

from __future__ import annotations

# Only building XML from our own values; nothing untrusted is parsed here.
import xml.etree.ElementTree as ET
from typing import Any

from connect311_contracts.status_words import resident_status
from connect311_map_api.core.state import iso

__all__ = [
    "FORMATS",
    "SPEC_URL",
    "discovery_dict",
    "discovery_xml",
    "errors_dict",
    "errors_xml",
    "request_dict",
    "service_definition_dict",
    "service_definition_xml",
    "service_dict",
    "status_notes",
    "to_xml",
]

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
FORMATS = ["text/xml", "application/json"]


def status_notes(m: Any) -> str | None:
    """The source's notes, else the resident wording when it says more than open/closed."""
    if m["status_notes"]:
        return str(m["status_notes"])
    words = resident_status(m["status"], m["closed_reason"], m["raw_status"])
    return None if words in ("Open", "Closed") else words


def request_dict(row: Any, extensions: bool = False) -> dict[str, Any]:
    """One stored request as a GeoReport v2 request (status is only open or closed)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    closed = m["status"] == "closed"
    out = {
        "service_request_id": m["service_request_id"],
        "status": "closed" if closed else "open",
        "status_notes": status_notes(m),
        "service_name": m["service_name"],
        "service_code": m["service_code"] or "",
        "description": (m["description"] or "")[:4000] or None,
        "agency_responsible": m["agency_responsible"],
        "service_notice": None,
        "requested_datetime": iso(m["requested_datetime"]),
        "updated_datetime": iso(m["closed_datetime"] if closed else m["updated_datetime"])
        or iso(m["updated_datetime"]),
        "expected_datetime": iso(m["expected_datetime"]),
        "address": m["address"],
        "address_id": None,
        "zipcode": m["zipcode"],
        "lat": m["lat"],
        "long": m["long"],
        "media_url": m["media_url"],
    }
    if extensions:
        out["extended_attributes"] = {
            "status": m["status"],
            "closed_reason": m["closed_reason"],
            "raw_status": m["raw_status"] or None,
        }
    return out


def service_definition_dict(code: str) -> dict[str, Any]:
    """A service's definition: we collect no extra form fields, so no attributes."""
    return {"service_code": code, "attributes": []}


def service_definition_xml(doc: dict[str, Any]) -> bytes:
    """The definition in the spec's XML shape (an empty `<attributes/>` list)."""
    top = ET.Element("service_definition")
    ET.SubElement(top, "service_code").text = _text(doc["service_code"])
    ET.SubElement(top, "attributes")
    return _bytes(top)


def errors_dict(code: int, description: str) -> list[dict[str, Any]]:
    """The spec's error list: `[{"code": 404, "description": "..."}]`."""
    return [{"code": code, "description": description}]


def errors_xml(errors: list[dict[str, Any]]) -> bytes:
    """`<errors><error><code/><description/></error></errors>`."""
    return to_xml("errors", "error", errors)


def service_dict(code: str, name: str | None, group: str | None) -> dict[str, Any]:
    """One service type as GeoReport v2 describes it (we hold no extra form fields)."""
    return {
        "service_code": code,
        "service_name": name or code,
        "description": None,
        "metadata": False,
        "type": "batch",
        "keywords": None,
        "group": group,
    }


def discovery_dict(base_url: str, changeset: str) -> dict[str, Any]:
    """The discovery document naming our one read-only production endpoint."""
    return {
        "changeset": changeset,
        "contact": "See the project documentation",
        "key_service": "No API key is needed: this endpoint is read-only",
        "endpoints": [
            {
                "specification": SPEC_URL,
                "url": f"{base_url.rstrip('/')}/open311/v2",
                "changeset": changeset,
                "type": "production",
                "formats": FORMATS,
            }
        ],
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_xml(root: str, item: str, items: list[dict[str, Any]]) -> bytes:
    """Dicts as <root><item><field>..</field></item></root> (UTF-8 bytes; nested dicts nest)."""
    top = ET.Element(root)
    for values in items:
        _fill(ET.SubElement(top, item), values)
    return _bytes(top)


def _fill(element: ET.Element, values: dict[str, Any]) -> None:
    for key, value in values.items():
        child = ET.SubElement(element, key)
        if isinstance(value, dict):  # an extension block, e.g. extended_attributes
            _fill(child, value)
        else:
            child.text = _text(value)


def _bytes(top: ET.Element) -> bytes:
    result: bytes = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return result


def discovery_xml(doc: dict[str, Any]) -> bytes:
    """The discovery document in the spec's XML shape."""
    top = ET.Element("discovery")
    for key in ("changeset", "contact", "key_service"):
        ET.SubElement(top, key).text = _text(doc[key])
    endpoints = ET.SubElement(top, "endpoints")
    for endpoint in doc["endpoints"]:
        element = ET.SubElement(endpoints, "endpoint")
        for key in ("specification", "url", "changeset", "type"):
            ET.SubElement(element, key).text = _text(endpoint[key])
        formats = ET.SubElement(element, "formats")
        for fmt in endpoint["formats"]:
            ET.SubElement(formats, "format").text = fmt
    return _bytes(top)
