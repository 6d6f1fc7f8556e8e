"""An alert named as its owner would recognise it: kind, place, radius, filters, label.

Used by the pages a person reaches from an email link (unsubscribe, manage), so they can
tell which of their alerts stopped. Never the address, never coordinates: "within 500 m of
a point on the map" names the alert without putting the place in a page or a log.
"""

from __future__ import annotations

from typing import Any

from connect311_contracts.subscriptions import Subscription

__all__ = ["describe_alert", "followed_summary", "format_metres"]


def format_metres(metres: float) -> str:
    """'500 m' or '1.5 km'."""
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{round(metres):d} m"


def followed_summary(row: Any) -> dict[str, Any]:
    """The followed request as the manage page names it (public request fields only)."""
    return {
        "service_request_id": row.service_request_id,
        "service_name": row.service_name,
        "address": row.address,
        "status": row.status,
    }


def _where(sub: Subscription, followed: dict[str, Any] | None) -> str:
    target = sub.target
    if target.kind == "circle":
        return f"within {format_metres(target.radius_m)} of a point on the map"
    if target.kind == "area":
        return "inside an area you drew on the map"
    if target.kind == "corridor":
        return f"along a route ({format_metres(target.width_m)} wide)"
    if target.kind == "follow":
        name = f"the request {target.service_request_id}"
        if followed:
            what = followed.get("service_name") or "Service request"
            at = f" at {followed['address']}" if followed.get("address") else ""
            name += f" ({what}{at})"
        return name
    return "everywhere in the city"


def describe_alert(sub: Subscription, followed: dict[str, Any] | None = None) -> str:
    """'"Home": requests within 500 m of a point on the map, only pothole' and the like."""
    f = sub.filters
    narrowing = [*f.service_codes, *f.agencies, *f.datasets]
    if sub.target.kind == "follow":
        text = "updates on " + _where(sub, followed)
    else:
        text = "requests " + _where(sub, followed)
    if narrowing:
        text += ", only " + ", ".join(narrowing)
    text = text[0].upper() + text[1:]
    return f"“{sub.label}”: {text}" if sub.label else text
