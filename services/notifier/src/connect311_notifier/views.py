"""Pure view models: what a template shows for a request event and for a digest."""

from __future__ import annotations

__all__ = [
    "DigestView",
    "ItemView",
    "digest_view",
    "format_clock",
    "format_distance",
    "format_time",
    "item_view",
    "kind_words",
    "reason_text",
    "with_article",
]

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from connect311_contracts.datasets import (
    KNOWN_DATASETS,
    SERVICE_REQUESTS,
    DatasetWords,
    dataset_words,
)
from connect311_contracts.events import EventKind, RequestOverdue
from connect311_contracts.media import public_media_url
from connect311_contracts.notifications import SubscriberMatched
from connect311_contracts.request import RequestStatus
from connect311_notifier.i18n import ENGLISH, N_, Language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.wording import (
    kind_phrase,
    local_clock,
    local_distance,
    local_status,
    local_time,
    local_words,
    overdue_sentence,
    rule_text,
    status_word,
)

KIND_LABELS = {
    EventKind.OPENED: N_("New request"),
    EventKind.UPDATED: N_("Updated"),
    EventKind.CLOSED: N_("Closed"),
    EventKind.REOPENED: N_("Reopened"),
    EventKind.OVERDUE: N_("Overdue"),
}
NOTES_IN_DIGEST = 300
"""Longest notes or description shown per digest item, so 200 items stay readable."""


@dataclass(frozen=True)
class ItemView:
    """One request event as an email shows it."""

    service_request_id: str
    title: str
    kind: str
    status: str
    previous_status: str | None
    agency: str | None
    address: str | None
    distance: str | None
    description: str | None
    notes: str | None
    when: str
    requested: str
    url: str
    matched_rule: str
    occurred_at: datetime
    event_kind: EventKind
    map_url: str = ""
    """The live map at the request ("See it on the map"); `url` is its track page."""
    photo_url: str | None = None
    """The request's photo, http(s) only: emails link to it rather than embed it (a remote
    image is blocked by most mail clients, and would tell the photo host who opened)."""
    words: DatasetWords = field(default_factory=lambda: dataset_words(SERVICE_REQUESTS))
    """What kind of record it is: a crime incident has no status and is not "a request"."""
    at: str = "at"
    """'near' for a crime incident: its address is generalised to the block."""
    overdue: str | None = None
    """For an overdue request, how late and what was promised (`wording.overdue_sentence`)."""


@dataclass(frozen=True)
class DigestView:
    """A digest's items grouped into new, updated and closed (latest state per request)."""

    new: list[ItemView] = field(default_factory=list)
    updated: list[ItemView] = field(default_factory=list)
    closed: list[ItemView] = field(default_factory=list)
    events: int = 0
    omitted: int = 0

    @property
    def total(self) -> int:
        """Requests shown."""
        return len(self.new) + len(self.updated) + len(self.closed)


def format_distance(metres: float | None, lang: Language = ENGLISH) -> str | None:
    """'350 m' or '1.2 km'; None when the subscription has no place."""
    return local_distance(metres, lang)


def format_time(moment: datetime, tz: ZoneInfo, lang: Language = ENGLISH) -> str:
    """A local, human time with its zone abbreviation, as the language writes it (Babel)."""
    return local_time(moment, tz, lang)


def format_clock(moment: datetime, tz: ZoneInfo, lang: Language = ENGLISH) -> str:
    """'3:00 PM EDT': a time of day in the city's zone, for 'next summary at ...'."""
    return local_clock(moment, tz, lang)


def with_article(word: str) -> str:
    """'an hourly', 'a daily': the article a period word needs."""
    return f"{'an' if word[:1].lower() in 'aeiou' or word.lower() == 'hourly' else 'a'} {word}"


def kind_words(words: DatasetWords, kind: EventKind, lang: Language = ENGLISH) -> str:
    """What happened, worded for the dataset: 'New request', 'Crime incident reported',
    'Code violation case closed'. A crime incident is never 'a request that was closed'.
    (`words` are already in `lang`.)"""
    if words.dataset == SERVICE_REQUESTS or words.dataset not in KNOWN_DATASETS:
        return lang.gettext(KIND_LABELS[kind])
    return kind_phrase(words.item, kind, words.has_status, lang)


def reason_text(command: SubscriberMatched, lang: Language = ENGLISH) -> str:
    """One reason an email was sent, as a sentence about the request.

    e.g. 'You follow this request', 'It is within 500 m of Shop (312 m away)',
    'You asked for all Water Resources requests'.
    """
    kind = command.subscription.target.kind
    if kind == "follow":
        return lang.gettext(N_("You follow this request"))
    rule = rule_text(command, lang)
    if kind == "citywide":
        return lang.gettext(N_("You asked for %(rule)s")) % {"rule": rule}
    return lang.gettext(N_("It is %(rule)s")) % {"rule": rule}


def _clip(text: str | None, limit: int | None) -> str | None:
    if text is None or limit is None or len(text) <= limit:
        return text
    return text[:limit].rstrip() + "…"


def item_view(
    command: SubscriberMatched,
    links: LinkBuilder,
    tz: ZoneInfo,
    clip: int | None = None,
    lang: Language = ENGLISH,
) -> ItemView:
    """What to show for one matched event, in the subscriber's language (`lang`)."""
    event = command.request_event
    request = event.request
    words = local_words(dataset_words(request.dataset), lang)
    moment = request.updated_datetime or event.occurred_at
    if event.kind is EventKind.OPENED or not words.has_status:  # an incident's time is its own
        moment = request.requested_datetime
    if isinstance(event, RequestOverdue):  # what happened is the due time passing
        moment = event.due_datetime
    previous = event.previous_status
    kind = kind_words(words, event.kind, lang)
    # "Closed — duplicate of another request", with the city's own word when it adds some;
    # a record with no status of its own (crime) says what happened instead.
    status = local_status(request.status, request.closed_reason, request.raw_status, lang)
    title = (
        request.service_name
        or request.service_code
        or (
            lang.gettext(N_("Service request"))
            if words.dataset == SERVICE_REQUESTS
            else words.item.capitalize()
        )
    )
    at = lang.gettext(N_("at") if words.has_status else N_("near"))
    overdue = None
    if isinstance(event, RequestOverdue):
        named = f"{title} {at} {request.address}" if request.address else title
        overdue = overdue_sentence(event, named, tz, lang)
    return ItemView(
        service_request_id=request.service_request_id,
        title=title,
        kind=kind,
        status=status if words.has_status else kind,
        previous_status=status_word(previous, lang) if previous else None,
        agency=request.agency_responsible,
        address=request.address,
        distance=format_distance(command.distance_m, lang),
        description=_clip(request.description, clip),
        notes=_clip(request.status_notes, clip),
        when=format_time(moment, tz, lang),
        requested=format_time(request.requested_datetime, tz, lang),
        url=links.request_url(request.service_request_id),
        map_url=links.map_url(request.service_request_id),
        photo_url=public_media_url(request.media_url),
        matched_rule=rule_text(command, lang),
        occurred_at=event.occurred_at,
        event_kind=event.kind,
        words=words,
        at=at,
        overdue=overdue,
    )


def digest_view(
    commands: list[SubscriberMatched],
    links: LinkBuilder,
    tz: ZoneInfo,
    max_items: int,
    lang: Language = ENGLISH,
) -> DigestView:
    """Fold many events into one digest: one line per request, in its latest state.

    A request opened within the digest's period counts as new whatever happened after;
    otherwise it is closed if its latest state is closed, else updated.
    """
    by_request: dict[str, list[SubscriberMatched]] = {}
    for command in sorted(commands, key=lambda c: c.request_event.occurred_at):
        by_request.setdefault(command.request_event.request.service_request_id, []).append(command)
    view = DigestView(events=len(commands))
    latest_first = sorted(
        by_request.values(), key=lambda cs: cs[-1].request_event.occurred_at, reverse=True
    )
    for events in latest_first[:max_items]:
        item = item_view(events[-1], links, tz, clip=NOTES_IN_DIGEST, lang=lang)
        if any(c.request_event.kind is EventKind.OPENED for c in events):
            view.new.append(item)
        elif events[-1].request_event.request.status is RequestStatus.CLOSED:
            view.closed.append(item)
        else:
            view.updated.append(item)
    return DigestView(
        new=view.new,
        updated=view.updated,
        closed=view.closed,
        events=len(commands),
        omitted=max(0, len(latest_first) - max_items),
    )
