"""What a subscription watches, in words built only from system facts (for the confirmation).

Anyone can sign any address up, so the confirmation email is the one message an attacker
can make the city send to a stranger. It therefore carries no text the requester chose: no
label, no category/agency/dataset strings (free text in the sign-up), no link but the confirm
link. It says the kind of alert, its size in metres and how many filters narrow it; numbers
and fixed words only. Allow-list: a new target kind falls back to a generic phrase.
"""

from __future__ import annotations

from connect311_contracts.subscriptions import Subscription

__all__ = ["describe_alert"]


def _metres(value: float) -> str:
    return f"{value / 1000:.1f} km" if value >= 1000 else f"{round(value):d} m"


def _what(subscription: Subscription) -> str:
    target = subscription.target
    if target.kind == "circle":
        return f"311 requests reported within {_metres(target.radius_m)} of a point on the map"
    if target.kind == "corridor":
        return f"311 requests reported within {_metres(target.width_m)} of a route on the map"
    if target.kind == "area":
        return "311 requests reported inside an area drawn on the map"
    if target.kind == "follow":
        return "updates to one 311 request"
    if target.kind == "citywide":
        return "311 requests across the city"
    return "311 requests"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def describe_alert(subscription: Subscription) -> str:
    """e.g. '311 requests reported within 500 m of a point on the map (2 categories)'."""
    f = subscription.filters
    narrowing = [
        _count(len(f.service_codes), "category", "categories") if f.service_codes else "",
        _count(len(f.agencies), "department", "departments") if f.agencies else "",
        _count(len(f.datasets), "dataset", "datasets") if f.datasets else "",
        # EventKind values are an enum of fixed words, never free text.
        "changes: " + ", ".join(sorted(kind.value for kind in f.event_kinds))
        if f.event_kinds
        else "",
    ]
    shown = [part for part in narrowing if part]
    return _what(subscription) + (f" ({'; '.join(shown)})" if shown else "")
