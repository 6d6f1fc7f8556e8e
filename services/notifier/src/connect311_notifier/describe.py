"""What a subscription watches, in words built only from system facts (for the confirmation).

Anyone can sign any address up, so the confirmation email is the one message an attacker
can make the city send to a stranger. It therefore carries no text the requester chose: no
label, no category/agency/dataset strings (free text in the sign-up), no link but the confirm
link. It says the kind of alert, its size in metres and how many filters narrow it; numbers
and fixed words only. Allow-list: a new target kind falls back to a generic phrase, and only
the known dataset names ("crime incidents", connect311_contracts.datasets) are named.
"""

from __future__ import annotations

from connect311_contracts.datasets import KNOWN_DATASETS
from connect311_contracts.events import EventKind
from connect311_contracts.subscriptions import Subscription
from connect311_notifier.i18n import ENGLISH, N_, Language
from connect311_notifier.wording import local_distance, local_words

__all__ = ["describe_alert"]


def _metres(value: float, lang: Language) -> str:
    # The same wording as the alerts' distances ('500 m', '1.2 km'), in the language's numbers.
    return local_distance(value, lang) or ""


def _known_datasets(subscription: Subscription, lang: Language) -> list[str] | None:
    """The datasets the alert is narrowed to, when every one is a known name (else None)."""
    chosen = subscription.filters.datasets
    if not chosen or any(d not in KNOWN_DATASETS for d in chosen):
        return None
    return [local_words(KNOWN_DATASETS[d], lang).items for d in sorted(set(chosen))]


def _what(subscription: Subscription, lang: Language) -> str:
    target = subscription.target
    # Known dataset names are system words ("crime incidents"); any other is only counted.
    known = _known_datasets(subscription, lang)
    and_ = " " + lang.gettext(N_("and")) + " "
    items = and_.join(known) if known else lang.pgettext("dataset items", "311 requests")
    named = {"items": items}
    if target.kind == "circle":
        named["distance"] = _metres(target.radius_m, lang)
        return (
            lang.gettext(N_("%(items)s reported within %(distance)s of a point on the map")) % named
        )
    if target.kind == "corridor":
        named["distance"] = _metres(target.width_m, lang)
        return (
            lang.gettext(N_("%(items)s reported within %(distance)s of a route on the map")) % named
        )
    if target.kind == "area":
        return lang.gettext(N_("%(items)s reported inside an area drawn on the map")) % named
    if target.kind == "follow":
        return lang.gettext(N_("updates to one 311 request"))
    if target.kind == "citywide":
        return lang.gettext(N_("%(items)s across the city")) % named
    if target.kind == "department_digest":
        return lang.gettext(
            N_("a daily digest of one department's overdue and oldest open requests")
        )
    return items


_CHANGES = {
    EventKind.OPENED: N_("opened"),
    EventKind.UPDATED: N_("updated"),
    EventKind.CLOSED: N_("closed"),
    EventKind.REOPENED: N_("reopened"),
    EventKind.OVERDUE: N_("overdue"),
}


def describe_alert(subscription: Subscription, lang: Language = ENGLISH) -> str:
    """e.g. '311 requests reported within 500 m of a point on the map (2 categories)', in the
    subscriber's language."""
    f = subscription.filters
    # EventKind values are an enum of fixed words, never free text.
    kinds = ", ".join(
        lang.gettext(_CHANGES[kind]) for kind in sorted(f.event_kinds, key=lambda k: k.value)
    )
    n_codes, n_agencies, n_datasets = len(f.service_codes), len(f.agencies), len(f.datasets)
    narrowing = [
        lang.ngettext("%(n)s category", "%(n)s categories", n_codes) % {"n": n_codes}
        if n_codes
        else "",
        lang.ngettext("%(n)s department", "%(n)s departments", n_agencies) % {"n": n_agencies}
        if n_agencies
        else "",
        lang.ngettext("%(n)s dataset", "%(n)s datasets", n_datasets) % {"n": n_datasets}
        if n_datasets and _known_datasets(subscription, lang) is None
        else "",
        lang.gettext(N_("changes: %(kinds)s")) % {"kinds": kinds} if f.event_kinds else "",
    ]
    shown = [part for part in narrowing if part]
    return _what(subscription, lang) + (f" ({'; '.join(shown)})" if shown else "")
