"""The words of an email in its language (pure: the caller passes the catalog).

English is the source text, so with English (`ENGLISH`, no catalog) every function here
returns exactly what the emails said before languages existed. Words that come from the
contracts (status words, dataset words) are listed with N_/NP_ so the catalog has them; the
city's own text (categories, addresses, notes, its status word) stays as the city wrote it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal

from connect311_contracts.datasets import DatasetWords, dataset_words
from connect311_contracts.events import EventKind, RequestOverdue
from connect311_contracts.notifications import SubscriberMatched
from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_contracts.service_levels import Target
from connect311_contracts.status_words import city_status, resident_status
from connect311_contracts.subscriptions import AreaTarget, CircleTarget, CorridorTarget
from connect311_notifier.i18n import ENGLISH, N_, NP_, Language

__all__ = [
    "local_clock",
    "local_distance",
    "local_lateness",
    "local_status",
    "local_target",
    "local_time",
    "local_words",
    "overdue_sentence",
    "rule_text",
    "status_word",
]


# Babel patterns, translated like any text: each language writes dates its own way.
TIME_PATTERN = N_("EEE dd MMM y, HH:mm zzz")
CLOCK_PATTERN = N_("h:mm a zzz")

STATUS_WORDS = {
    RequestStatus.OPEN: N_("Open"),
    RequestStatus.ACKNOWLEDGED: N_("Acknowledged"),
    RequestStatus.IN_PROGRESS: N_("In progress"),
    RequestStatus.CLOSED: N_("Closed"),
}
REASON_WORDS = {
    ClosedReason.FIXED: N_("completed"),
    ClosedReason.DUPLICATE: N_("duplicate of another request"),
    ClosedReason.CANCELLED: N_("cancelled"),
    ClosedReason.REFERRED: N_("referred to another agency"),
}
# The dataset words (connect311_contracts.datasets), each with its field as the context.
DATASET_WORDS = (
    NP_("dataset label", "311 requests"),
    NP_("dataset item", "311 request"),
    NP_("dataset items", "311 requests"),
    NP_("dataset kind_label", "Category"),
    NP_("dataset id_label", "Request"),
    NP_("dataset description_label", "Description"),
    NP_("dataset label", "Code violations"),
    NP_("dataset item", "code violation case"),
    NP_("dataset items", "code violation cases"),
    NP_("dataset kind_label", "Case type"),
    NP_("dataset id_label", "Case"),
    NP_("dataset description_label", "Violations"),
    NP_("dataset label", "Crime"),
    NP_("dataset item", "crime incident"),
    NP_("dataset items", "crime incidents"),
    NP_("dataset kind_label", "Offence"),
    NP_("dataset id_label", "Incident"),
    NP_("dataset description_label", "Details"),
)


def local_time(moment: datetime, tz: ZoneInfo, t: Language = ENGLISH) -> str:
    """'Mon 06 May 2024, 14:30 EDT'; in Spanish 'lunes 6 de mayo de 2024, 2:30 p.m. EDT'."""
    return _formatted_time(moment, tz, t.gettext(TIME_PATTERN), t.locale)


# Babel's date formatting is most of an alert's own facts (an opened request's time is
# shown twice; a digest repeats a request's): once per instant, zone, pattern and locale.
# Equal aware datetimes are one instant, and Babel writes an instant in `tz` the same
# whatever zone it came in.
@functools.lru_cache(maxsize=1024)
def _formatted_time(moment: datetime, tz: ZoneInfo, pattern: str, locale: str) -> str:
    return format_datetime(moment, pattern, tzinfo=tz, locale=locale)


def local_clock(moment: datetime, tz: ZoneInfo, t: Language = ENGLISH) -> str:
    """'3:00 PM EDT' (a time of day in the city's zone); in Spanish '3:00 p.m. EDT'."""
    return format_datetime(moment, t.gettext(CLOCK_PATTERN), tzinfo=tz, locale=t.locale)


def local_distance(metres: float | None, t: Language = ENGLISH) -> str | None:
    """'350 m' or '1.2 km' in the language's number format; None without a place."""
    if metres is None:
        return None
    if metres < 1000:
        return _metres(round(metres), t.locale)
    if not math.isfinite(metres):  # Babel's infinity symbol (or NaN), as before
        return f"{format_decimal(metres / 1000, format='0.0', locale=t.locale)} km"
    # What Babel rounds the value to (the float's repr as a Decimal, to tenths in the
    # decimal context): formatting that again writes the same, and few keys repeat a lot.
    return _kilometres(Decimal(str(metres / 1000)).quantize(_TENTH), t.locale)


_TENTH = Decimal("0.1")


# Babel's number formatting was a tenth of an alert's cost, called for every recipient
# (their distance, and in Spanish their rule's radius): one call per value and locale.
@functools.lru_cache(maxsize=4096)
def _metres(whole: int, locale: str) -> str:
    return f"{format_decimal(whole, locale=locale)} m"


@functools.lru_cache(maxsize=4096)
def _kilometres(tenths: Decimal, locale: str) -> str:
    return f"{format_decimal(tenths, format='0.0', locale=locale)} km"


def status_word(status: RequestStatus | str, t: Language = ENGLISH) -> str:
    """'Open', 'In progress' ... in the email's language ('Unknown' for anything else)."""
    try:
        return t.gettext(STATUS_WORDS[RequestStatus(status)])
    except ValueError:
        return t.gettext(N_("Unknown"))


def local_status(
    status: RequestStatus | str,
    closed_reason: ClosedReason | str | None,
    raw_status: str | None,
    t: Language = ENGLISH,
) -> str:
    """The resident's status line ('Closed — duplicate of another request (city status: Dup)')
    in the email's language; the city's own status word stays as the city wrote it."""
    if t.english:
        return resident_status(status, closed_reason, raw_status)
    phrase = status_word(status, t)
    try:
        reason = ClosedReason(closed_reason) if closed_reason else None
    except ValueError:
        reason = None
    if reason is not None and str(status) == RequestStatus.CLOSED.value:
        phrase += " — " + t.gettext(REASON_WORDS[reason])
    word = city_status(status, closed_reason, raw_status)
    if not word:
        return phrase
    return phrase + " " + t.gettext(N_("(city status: %(word)s)")) % {"word": word}


def local_words(words: DatasetWords, t: Language = ENGLISH) -> DatasetWords:
    """A dataset's words in the email's language (its key and drawing unchanged)."""
    if t.english:
        return words

    def word(field: str) -> str:
        return t.pgettext(f"dataset {field}", getattr(words, field))

    return dataclasses.replace(
        words,
        label=word("label"),
        item=word("item"),
        items=word("items"),
        kind_label=word("kind_label"),
        id_label=word("id_label"),
        description_label=word("description_label"),
    )


def kind_phrase(item: str, kind: EventKind, has_status: bool, t: Language = ENGLISH) -> str:
    """'Crime incident reported', 'Code violation case closed' (item already translated)."""
    if has_status:
        phrases = {
            EventKind.OPENED: N_("%(item)s opened"),
            EventKind.UPDATED: N_("%(item)s updated"),
            EventKind.CLOSED: N_("%(item)s closed"),
            EventKind.REOPENED: N_("%(item)s reopened"),
            EventKind.OVERDUE: N_("%(item)s overdue"),
        }
        phrase = phrases[kind]
    elif kind in (EventKind.UPDATED, EventKind.REOPENED):
        phrase = N_("%(item)s updated")
    else:  # point events: first seen is "reported" (the ingestor stores them closed)
        phrase = N_("%(item)s reported")
    return t.gettext(phrase) % {"item": item[:1].upper() + item[1:]}


def rule_text(command: SubscriberMatched, t: Language = ENGLISH) -> str:
    """Why the event matched ('within 500 m of Home (312 m away)').

    English keeps the matcher's own sentence; another language words the same facts (the
    target, the distance, the request) again, since the matcher writes English only.
    """
    if t.english:
        return command.matched_rule
    sub = command.subscription
    target = sub.target
    request = command.request_event.request
    label = sub.label
    away = local_distance(command.distance_m or 0.0, t)
    if isinstance(target, CircleTarget):
        return t.gettext(N_("within %(radius)s of %(place)s (%(away)s away)")) % {
            "radius": local_distance(target.radius_m, t),
            "place": label or t.gettext(N_("your place")),
            "away": away,
        }
    if isinstance(target, AreaTarget):
        if label:
            return t.gettext(N_("inside your area “%(label)s”")) % {"label": label}
        return t.gettext(N_("inside your area"))
    if isinstance(target, CorridorTarget):
        route = (
            t.gettext(N_("your route “%(label)s”")) % {"label": label}
            if label
            else t.gettext(N_("your route"))
        )
        return t.gettext(N_("within %(width)s of %(route)s (%(away)s away)")) % {
            "width": local_distance(target.width_m, t),
            "route": route,
            "away": away,
        }
    if target.kind == "follow":
        return t.gettext(N_("you follow request %(id)s")) % {"id": request.service_request_id}
    f = sub.filters
    if f.agencies:
        what = request.agency_responsible or ""
    elif f.service_codes:
        what = request.service_name or request.service_code or ""
    else:
        what = local_words_for(request.dataset, t).label
    return t.gettext(N_("all %(what)s requests")) % {"what": what}


def local_words_for(dataset: str, t: Language = ENGLISH) -> DatasetWords:
    """The words of a dataset by name, in the email's language."""
    return local_words(dataset_words(dataset), t)


# How late, and what was promised: "Pothole at 100 Main St is 3 days overdue: the city's
# target was 5 days (due Mon 2 Dec)". Whole sentences, so each language orders them its way.
OVERDUE_AGAINST_TARGET = N_(
    "%(item)s is %(late)s overdue: the city's target was %(target)s (due %(due)s)"
)
OVERDUE_AGAINST_DATE = N_("%(item)s is %(late)s overdue: the city expected it done by %(due)s")
NOW_OVERDUE_AGAINST_TARGET = N_(
    "%(item)s is now overdue: the city's target was %(target)s (due %(due)s)"
)
NOW_OVERDUE_AGAINST_DATE = N_("%(item)s is now overdue: the city expected it done by %(due)s")
DUE_DAY_PATTERN = N_("EEE d MMM")
DUE_TIME_PATTERN = N_("EEE d MMM, h:mm a zzz")


def local_lateness(seconds: int, t: Language = ENGLISH) -> str | None:
    """'3 days', '5 hours', '40 minutes' (the largest whole unit); None under a minute."""
    days, hours, minutes = seconds // 86_400, seconds // 3_600, seconds // 60
    if days:
        return t.ngettext("%(n)s day", "%(n)s days", days) % {"n": days}
    if hours:
        return t.ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours}
    if minutes:
        return t.ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}
    return None


def local_target(target: Target, t: Language = ENGLISH) -> str:
    """'5 days', '3 business days', '1.5 hours', in the language's words and numbers."""
    if target.days is not None:
        n = target.days
        if target.business_days:
            return t.ngettext("%(n)s business day", "%(n)s business days", n) % {"n": n}
        return t.ngettext("%(n)s day", "%(n)s days", n) % {"n": n}
    hours = target.hours or 0.0
    shown = format_decimal(hours, locale=t.locale)
    return t.ngettext("%(n)s hour", "%(n)s hours", 1 if hours == 1 else 2) % {"n": shown}


def overdue_sentence(event: RequestOverdue, item: str, tz: ZoneInfo, t: Language = ENGLISH) -> str:
    """How late `item` (e.g. 'Pothole at 100 Main St') is and what the city promised.

    A day target names the due day; an hour target or the feed's own date names the time too.
    """
    by_day = event.target is not None and event.target.days is not None
    pattern = DUE_DAY_PATTERN if by_day else DUE_TIME_PATTERN
    due = format_datetime(event.due_datetime, t.gettext(pattern), tzinfo=tz, locale=t.locale)
    late = local_lateness(event.overdue_by_s, t)
    words = {"item": item, "late": late or "", "due": due}
    if event.target is not None:
        words["target"] = local_target(event.target, t)
        sentence = OVERDUE_AGAINST_TARGET if late else NOW_OVERDUE_AGAINST_TARGET
    else:
        sentence = OVERDUE_AGAINST_DATE if late else NOW_OVERDUE_AGAINST_DATE
    return t.gettext(sentence) % words
