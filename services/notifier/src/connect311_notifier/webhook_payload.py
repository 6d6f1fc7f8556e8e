"""What a webhook carries: versioned JSON about one matched event, or a Slack/Teams message.

The standard payload is for programs: stable field names, `schema_version` 1 (a field is only
ever added; a change of meaning is a new version), the request's public fields only (an
allow-list: never the subscriber's email address, place or geometry, and the request carries
no reporter data by contract). The Slack and Microsoft Teams shapes are for people, worded
like the email (same view model, same translations) for those apps' incoming webhooks.

One webhook per (subscription, event): a command naming several subscriptions of a person
(`also`) is split with `SubscriberMatched.parts()` first, since each subscription has its
own endpoint and secret. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from connect311_contracts.media import public_media_url
from connect311_contracts.notifications import SubscriberMatched
from connect311_notifier.i18n import ENGLISH, N_, Language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.policy import dedup_key
from connect311_notifier.views import ItemView, item_view

__all__ = [
    "EVENT_TYPE",
    "MAX_TEXT_CHARS",
    "REQUEST_FIELDS",
    "VERIFICATION_TYPE",
    "WEBHOOK_SCHEMA_VERSION",
    "Shape",
    "body",
    "encode",
    "event_payload",
    "slack_payload",
    "teams_payload",
    "verification_payload",
    "webhook_id",
]

WEBHOOK_SCHEMA_VERSION = 1
EVENT_TYPE = "request.matched"
VERIFICATION_TYPE = "webhook.verification"
MAX_TEXT_CHARS = 4000
"""Longest description or city notes carried: the whole payload stays well under the
20 kB the Standard Webhooks spec recommends (a city's text may be 10,000 characters)."""
REQUEST_FIELDS = frozenset(
    {
        "service_request_id",
        "source",
        "dataset",
        "service_code",
        "service_name",
        "agency_responsible",
        "status",
        "raw_status",
        "closed_reason",
        "status_notes",
        "description",
        "address",
        "zipcode",
        "lat",
        "long",
        "requested_datetime",
        "updated_datetime",
        "closed_datetime",
        "expected_datetime",
    }
)
"""The request's fields a receiver gets (plus its public `media_url`, `url` and `map_url`)."""
SLACK_HEADER_CHARS = 150
SLACK_TEXT_CHARS = 2900
"""Block Kit caps a header at 150 characters and a section's text at 3,000."""


class Shape(StrEnum):
    """What the receiver understands: our JSON, or a chat app's incoming-webhook message."""

    STANDARD = "standard"
    SLACK = "slack"
    TEAMS = "teams"


def webhook_id(command: SubscriberMatched) -> str:
    """The `webhook-id`: the same for every attempt at one (subscription, request, event),
    also after a crash or a replay, so the receiver can drop a copy. No '.' (the spec)."""
    key = "\x1f".join(dedup_key(command))
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _clip(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def event_payload(command: SubscriberMatched, links: LinkBuilder) -> dict[str, Any]:
    """The standard payload (schema_version 1) for one subscription's matched event."""
    event = command.request_event
    request = event.request
    fields = request.model_dump(mode="json", include=set(REQUEST_FIELDS))
    fields["description"] = _clip(request.description)
    fields["status_notes"] = _clip(request.status_notes)
    fields["media_url"] = public_media_url(request.media_url)
    fields["url"] = links.request_url(request.service_request_id)
    fields["map_url"] = links.map_url(request.service_request_id)
    return {
        "type": EVENT_TYPE,
        "schema_version": WEBHOOK_SCHEMA_VERSION,
        "event_id": event.event_id,
        "occurred_at": event.model_dump(mode="json", include={"occurred_at"})["occurred_at"],
        "subscription_id": command.subscription.subscription_id,
        "event": {
            "kind": event.kind.value,
            "previous_status": event.previous_status.value if event.previous_status else None,
            "changed_fields": list(event.changed_fields),
        },
        "match": {"rule": command.matched_rule, "distance_m": command.distance_m},
        "request": fields,
    }


def verification_payload(subscription_id: str, challenge: str, occurred_at: str) -> dict[str, Any]:
    """The handshake before the first delivery: the receiver answers 2xx with the challenge."""
    return {
        "type": VERIFICATION_TYPE,
        "schema_version": WEBHOOK_SCHEMA_VERSION,
        "occurred_at": occurred_at,
        "subscription_id": subscription_id,
        "challenge": challenge,
    }


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed and sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (<url|label> links, <!channel> mentions): city text
    # must never become a link or a mention.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(item: ItemView, lang: Language) -> list[tuple[str, str]]:
    facts = []
    if item.words.has_status:
        facts.append((lang.gettext(N_("Status:")), item.status))
    if item.address:
        facts.append((lang.gettext(N_("Where:")), item.address))
    if item.agency:
        facts.append((lang.gettext(N_("Department:")), item.agency))
    facts.append((lang.gettext(N_("When:")), item.when))
    return facts


def _links(item: ItemView, lang: Language) -> list[tuple[str, str]]:
    found = [(lang.gettext(N_("See it on the map")), item.map_url or item.url)]
    if item.words.has_status:
        record = item.words.id_label.lower()
        found.append((lang.gettext(N_("Track this %(record)s")) % {"record": record}, item.url))
    return found


def slack_payload(
    command: SubscriberMatched, links: LinkBuilder, tz: ZoneInfo, lang: Language = ENGLISH
) -> dict[str, Any]:
    """A Slack incoming-webhook message (Block Kit), worded like the email."""
    item = item_view(command, links, tz, clip=SLACK_TEXT_CHARS, lang=lang)
    headline = f"{item.kind}: {item.title}"
    fields = [
        {"type": "mrkdwn", "text": f"*{_slack_escape(label)}*\n{_slack_escape(value)}"}
        for label, value in _facts(item, lang)
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": headline[:SLACK_HEADER_CHARS], "emoji": False},
        },
        {"type": "section", "fields": fields},
    ]
    text = item.notes or item.description
    if text:  # plain text: nothing the city wrote is read as formatting
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": text}})
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                for label, url in _links(item, lang)
            ],
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _slack_escape(item.matched_rule)}],
        }
    )
    return {"text": _slack_escape(headline), "blocks": blocks}


def teams_payload(
    command: SubscriberMatched, links: LinkBuilder, tz: ZoneInfo, lang: Language = ENGLISH
) -> dict[str, Any]:
    """A Microsoft Teams message with an Adaptive Card (Workflows incoming webhooks).

    Adaptive Card text is Markdown with no plain-text mode, so the city's free text
    (description, notes) is left out: a '[link](...)' in it would render as a link.
    """
    item = item_view(command, links, tz, lang=lang)
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": f"{item.kind}: {item.title}",
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in _facts(item, lang)],
            },
            {"type": "TextBlock", "text": item.matched_rule, "isSubtle": True, "wrap": True},
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            for label, url in _links(item, lang)
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def body(
    shape: Shape,
    command: SubscriberMatched,
    links: LinkBuilder,
    tz: ZoneInfo,
    lang: Language = ENGLISH,
) -> bytes:
    """The bytes to sign and send for one matched event, in the receiver's shape."""
    if shape is Shape.SLACK:
        return encode(slack_payload(command, links, tz, lang))
    if shape is Shape.TEAMS:
        return encode(teams_payload(command, links, tz, lang))
    return encode(event_payload(command, links))
