"""The confirmed page names the alert it just turned on, from system facts only.

The confirm link answers with a redirect to the fixed page `/subscriptions/confirmed` (no
subscription id in the URL: a shared or logged URL names nothing). The link's own signed
token rides along in a short-lived, HttpOnly cookie scoped to that page, which reads it back.

Whoever signed up chose the label, and may not be the person reading (a stranger can sign
anyone up), so the page never shows it: only the kind, the radius, and filter values the
city's own requests carry (an unknown code is counted, not echoed).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine

from connect311_contracts.datasets import dataset_words
from connect311_contracts.subscriptions import Subscription
from connect311_contracts.tokens import InvalidToken, TokenPurpose, read_subscription_token
from connect311_map_api.db import aggregates, queries
from connect311_map_api.db import subscription_store as store
from connect311_map_api.web.alert_words import alert_sentence
from connect311_map_api.web.i18n import translations
from connect311_map_api.web.language import DEFAULT_LANGUAGE

__all__ = ["CONFIRMED_COOKIE", "confirmed_alert_name", "describe_confirmed"]

CONFIRMED_COOKIE = "c311_confirmed"


def _known(conn: Connection) -> tuple[dict[str, str], set[str], set[str]]:
    """Category names by code, agencies and datasets, as the city's requests carry them."""
    kinds = aggregates.kind_counts(conn, "service_code", "service_name")
    names = {str(code): str(name or code) for code, name, _ in kinds}
    agencies = {str(r[0]) for r in aggregates.kind_counts(conn, "agency")}
    datasets = {str(r[0]) for r in aggregates.kind_counts(conn, "dataset")}
    return names, agencies, datasets


def _narrowing(sub: Subscription, conn: Connection, lang: str) -> str:
    names, agencies, datasets = _known(conn)
    f = sub.filters
    shown = [names[code] for code in f.service_codes if code in names]
    shown += [a for a in f.agencies if a in agencies]
    shown += [dataset_words(d).label for d in f.datasets if d in datasets]
    unknown = len(f.service_codes) + len(f.agencies) + len(f.datasets) - len(shown)
    translation = translations(lang)
    if unknown:
        others = translation.ngettext("%(n)s other filter", "%(n)s other filters", unknown)
        shown.append(others % {"n": unknown})
    if not shown:
        return ""
    return translation.gettext(", only %(filters)s") % {"filters": ", ".join(shown)}


def describe_confirmed(sub: Subscription, conn: Connection, lang: str = DEFAULT_LANGUAGE) -> str:
    """'Requests within 500 m of a point on the map, only Pothole' (never the label)."""
    target = sub.target
    if target.kind == "follow":
        row = queries.one_request(conn, target.service_request_id)
        if row is None:
            return translations(lang).gettext("Updates on a request you chose to follow")
        return alert_sentence(sub, {"service_name": row.service_name}, lang)
    return alert_sentence(sub, None, lang) + _narrowing(sub, conn, lang)


def confirmed_alert_name(
    engine: Engine, secret: str, token: str | None, max_age_s: int, lang: str = DEFAULT_LANGUAGE
) -> str | None:
    """The confirmed alert's name from the cookie's confirm token, or None (no, bad, gone)."""
    if not token or len(token) > 500:
        return None
    try:
        sid = read_subscription_token(secret, TokenPurpose.CONFIRM, token, max_age_s)
    except InvalidToken:
        return None
    with engine.connect() as conn:
        sub: Any = store.get(conn, sid)
        return describe_confirmed(sub, conn, lang) if sub is not None else None
