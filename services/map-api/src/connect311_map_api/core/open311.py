"""Open311 GeoReport v2 output: field mapping and XML rendering (pure)."""

from __future__ import annotations

# Only building XML from our own values; nothing untrusted is parsed here.
import xml.etree.ElementTree as ET
from typing import Any

from connect311_map_api.core.state import iso

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
FORMATS = ["text/xml", "application/json"]


def request_dict(row: Any) -> dict[str, Any]:
    """One stored request as a GeoReport v2 request (status is only open or closed)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    closed = m["status"] == "closed"
    return {
        "service_request_id": m["service_request_id"],
        "status": "closed" if closed else "open",
        "status_notes": m["status_notes"],
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
    """A list of flat dicts as <root><item><field>..</field></item></root> (UTF-8 bytes)."""
    top = ET.Element(root)
    for values in items:
        element = ET.SubElement(top, item)
        for key, value in values.items():
            ET.SubElement(element, key).text = _text(value)
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
    result: bytes = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return result
