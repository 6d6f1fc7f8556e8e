"""Pure view of a department's daily digest: what its email shows (no I/O).

The content (which requests, in which order, the counts) is the map API's, computed from its
request state by the shared due-date rule; this module only words it in the subscriber's
language: how late each overdue request is and what the city promised, how old each of the
oldest open ones is, with links to each request's track page and to the department's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from connect311_contracts.digests import DepartmentDigestRequested, DigestEntry
from connect311_notifier.i18n import ENGLISH, N_, Language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.wording import (
    DUE_DAY_PATTERN,
    DUE_TIME_PATTERN,
    local_lateness,
    local_target,
    local_time,
)

__all__ = ["DepartmentDigestView", "DigestLine", "department_digest_view", "department_url"]

LATE_AGAINST_TARGET = N_("%(late)s overdue: the target was %(target)s (due %(due)s)")
LATE_AGAINST_DATE = N_("%(late)s overdue: the city expected it done by %(due)s")
OPEN_FOR = N_("open for %(age)s")
UNDER_A_MINUTE = N_("under a minute")
DAY_PATTERN = N_("EEEE d MMMM y")


@dataclass(frozen=True)
class DigestLine:
    """One request in a digest list."""

    service_request_id: str
    title: str
    address: str | None
    url: str
    detail: str
    """How late and against what (overdue list), or how long open (oldest list)."""


@dataclass(frozen=True)
class DepartmentDigestView:
    """Everything the department digest templates show."""

    agency: str
    day: str
    as_of: str
    open_count: int
    overdue_count: int
    overdue: list[DigestLine]
    oldest: list[DigestLine]
    more_overdue: int
    more_oldest: int
    department_url: str


def department_url(links: LinkBuilder, agency: str) -> str:
    """The department performance page, filtered to one agency (in the email's language)."""
    params = {"agency": agency} if links.lang == "en" else {"agency": agency, "lang": links.lang}
    return f"{links.base_url.rstrip('/')}/stats/departments?{urlencode(params)}"


def _duration(seconds: int, t: Language) -> str:
    return local_lateness(seconds, t) or t.gettext(UNDER_A_MINUTE)


def _due(entry: DigestEntry, tz: ZoneInfo, t: Language) -> str:
    assert entry.due_datetime is not None
    by_day = entry.target is not None and entry.target.days is not None
    pattern = t.gettext(DUE_DAY_PATTERN if by_day else DUE_TIME_PATTERN)
    return format_datetime(entry.due_datetime, pattern, tzinfo=tz, locale=t.locale)


def lateness(entry: DigestEntry, tz: ZoneInfo, t: Language = ENGLISH) -> str:
    """'3 days overdue: the target was 5 days (due Mon 2 Dec)'."""
    words = {"late": _duration(entry.overdue_by_s or 0, t), "due": _due(entry, tz, t)}
    if entry.target is not None:
        words["target"] = local_target(entry.target, t)
        return t.gettext(LATE_AGAINST_TARGET) % words
    return t.gettext(LATE_AGAINST_DATE) % words


def _line(entry: DigestEntry, detail: str, links: LinkBuilder, t: Language) -> DigestLine:
    title = entry.service_name or t.pgettext("dataset item", "311 request")
    return DigestLine(
        entry.service_request_id,
        title,
        entry.address,
        links.request_url(entry.service_request_id),
        detail,
    )


def department_digest_view(
    command: DepartmentDigestRequested, links: LinkBuilder, tz: ZoneInfo, t: Language = ENGLISH
) -> DepartmentDigestView:
    """The digest in `t`'s words, lists in the map API's order (most late, then oldest)."""
    overdue = [_line(e, lateness(e, tz, t), links, t) for e in command.overdue]
    oldest = [
        _line(e, t.gettext(OPEN_FOR) % {"age": _duration(e.age_s, t)}, links, t)
        for e in command.oldest_open
    ]
    return DepartmentDigestView(
        agency=command.agency,
        day=format_date(command.day, t.gettext(DAY_PATTERN), locale=t.locale),
        as_of=local_time(command.as_of, tz, t),
        open_count=command.open_count,
        overdue_count=command.overdue_count,
        overdue=overdue,
        oldest=oldest,
        more_overdue=command.overdue_count - len(overdue),
        more_oldest=command.open_count - len(oldest),
        department_url=department_url(links, command.agency),
    )


def subject(view: DepartmentDigestView, t: Language = ENGLISH) -> str:
    """'Streets: 3 overdue, 12 open (daily digest, Monday 6 May 2024)'."""
    # Each count with its own plural form ('1 vencida', '3 vencidas'): the body's words.
    overdue, open_ = view.overdue_count, view.open_count
    words = {
        "agency": view.agency,
        "overdue": t.ngettext("%(num)s overdue", "%(num)s overdue", overdue) % {"num": overdue},
        "open": t.ngettext("%(num)s open", "%(num)s open", open_) % {"num": open_},
        "day": view.day,
    }
    sentence = N_("%(agency)s: %(overdue)s, %(open)s (daily digest, %(day)s)")
    return t.gettext(sentence) % words
