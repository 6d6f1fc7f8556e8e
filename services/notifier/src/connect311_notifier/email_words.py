"""Pure: what an email states beyond its templates: subjects, titles, names and reasons."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connect311_contracts.subscriptions import Subscription
from connect311_notifier.i18n import ENGLISH, N_, Language
from connect311_notifier.views import ItemView

__all__ = [
    "DEFAULT_FOOTER",
    "Reason",
    "alert_context",
    "alert_subject",
    "clean_header",
    "digest_title",
    "subscription_name",
]

SUBJECT_MAX = 150


def clean_header(text: str, limit: int = SUBJECT_MAX) -> str:
    """One line, bounded: untrusted text never injects headers."""
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


_NAMES = {
    "circle": N_("your place"),
    "area": N_("your area"),
    "corridor": N_("your route"),
    "department_digest": N_("your department digest"),
}
_CITYWIDE = N_("city-wide alerts")
DEFAULT_FOOTER = N_("You receive this because you subscribed to 311 alerts on Connect311.")
"""settings.NotifierSettings.footer's default, for the catalog: a footer the catalog knows
is translated, one a city wrote itself is sent as written."""


def subscription_name(subscription: Subscription, lang: Language = ENGLISH) -> str:
    """The subscriber's own label, or a description of what it watches."""
    if subscription.label:
        return subscription.label
    target = subscription.target
    if target.kind == "follow":
        return lang.gettext(N_("request %(id)s")) % {"id": target.service_request_id}
    return lang.gettext(_NAMES.get(target.kind, _CITYWIDE))


@dataclass(frozen=True)
class Reason:
    """One reason an email was sent, and the one-click link that stops that subscription."""

    text: str
    subscription_name: str
    unsubscribe_url: str


def alert_subject(item: ItemView, follow: bool, lang: Language) -> str:
    """What changed, in a line: the overdue sentence, a follow update, or kind and place."""
    if item.overdue:  # how late and what was promised says it all
        return item.overdue
    if follow:
        return lang.gettext(N_("Update: %(title)s is now %(status)s")) % {
            "title": item.title,
            "status": item.status,
        }
    where = f" {item.at} {item.address}" if item.address else ""
    return f"{item.kind}: {item.title}{where}"


def alert_context(
    item: ItemView,
    follow: bool,
    place: str,
    name: str,
    reasons: list[Reason],
    notice: str | None,
) -> dict[str, Any]:
    """The alert templates' own variables (the shared layout's are added in render)."""
    return {
        "item": item,
        "follow": follow,
        "place": place,
        "subscription_name": name,
        "reasons": reasons,
        "notice": notice,
    }


_DIGEST_TITLES = {
    "hourly": N_("Your hourly 311 digest"),
    "daily": N_("Your daily 311 digest"),
    "weekly": N_("Your weekly 311 digest"),
}


def digest_title(period: str, grouped: bool, lang: Language) -> str:
    """'Your daily 311 digest' (one sentence per period: word order differs by language)."""
    if grouped:
        return lang.gettext(N_("Your grouped 311 alerts"))
    if period in _DIGEST_TITLES:
        return lang.gettext(_DIGEST_TITLES[period])
    return f"Your {period} 311 digest"  # a period the catalog does not know reads English
