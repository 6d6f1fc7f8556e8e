"""An alert named as its owner would recognise it: kind, place, radius, filters, label.

Used by the pages a person reaches from an email link (unsubscribe, manage), so they can
tell which of their alerts stopped. Never the address, never coordinates: "within 500 m of
a point on the map" names the alert without putting the place in a page or a log.
"""

from __future__ import annotations

from typing import Any

from babel.numbers import format_decimal

from connect311_contracts.datasets import dataset_words
from connect311_contracts.subscriptions import Subscription
from connect311_map_api.web.i18n import format_locale, gettext_for
from connect311_map_api.web.language import DEFAULT_LANGUAGE

__all__ = ["alert_sentence", "describe_alert", "followed_summary", "format_metres"]


def format_metres(metres: float, lang: str = DEFAULT_LANGUAGE) -> str:
    """'500 m' or '1.5 km', the number written as the language writes it in the US."""
    locale = format_locale(lang)
    if metres >= 1000:
        return f"{format_decimal(metres / 1000, format='#,##0.##', locale=locale)} km"
    return f"{format_decimal(round(metres), locale=locale)} m"


def followed_summary(row: Any) -> dict[str, Any]:
    """The followed request as the manage page names it (public request fields only)."""
    return {
        "service_request_id": row.service_request_id,
        "service_name": row.service_name,
        "address": row.address,
        "status": row.status,
    }


def alert_sentence(sub: Subscription, followed: dict[str, Any] | None, lang: str) -> str:
    """What the alert watches, as a sentence: 'Requests within 500 m of a point on the map'."""
    _ = gettext_for(lang)
    target = sub.target
    if target.kind == "circle":
        distance = format_metres(target.radius_m, lang)
        return _("Requests within %(distance)s of a point on the map") % {"distance": distance}
    if target.kind == "area":
        return _("Requests inside an area you drew on the map")
    if target.kind == "corridor":
        width = format_metres(target.width_m, lang)
        return _("Requests along a route (%(width)s wide)") % {"width": width}
    if target.kind == "follow":
        named = {"id": target.service_request_id}
        if not followed:
            return _("Updates on the request %(id)s") % named
        named["what"] = followed.get("service_name") or _("Service request")
        if followed.get("address"):
            named["address"] = followed["address"]
            return _("Updates on the request %(id)s (%(what)s at %(address)s)") % named
        return _("Updates on the request %(id)s (%(what)s)") % named
    if target.kind == "department_digest":
        sentence = _("Daily digest of the overdue and oldest open requests of %(agency)s")
        return sentence % {"agency": target.agency}
    return _("Requests everywhere in the city")


def describe_alert(
    sub: Subscription, followed: dict[str, Any] | None = None, lang: str = DEFAULT_LANGUAGE
) -> str:
    """'"Home": Requests within 500 m of a point on the map, only pothole' and the like, in
    the page's language (the filter values and the label stay as they were written)."""
    _ = gettext_for(lang)
    f = sub.filters
    # Datasets in their words ("Crime", "Code violations"), not the feeds' keys.
    narrowing = [*f.service_codes, *f.agencies, *(dataset_words(d).label for d in f.datasets)]
    text = alert_sentence(sub, followed, lang)
    if narrowing:
        text += _(", only %(filters)s") % {"filters": ", ".join(narrowing)}
    return _("“%(label)s”: %(alert)s") % {"label": sub.label, "alert": text} if sub.label else text
