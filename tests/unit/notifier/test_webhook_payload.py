"""Webhook payloads: the versioned JSON, its id, no personal data, the Slack and Teams shapes."""

from __future__ import annotations

import json
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from connect311_contracts.notifications import AlsoMatched, SubscriberMatched
from connect311_contracts.request import MAX_TEXT, RequestStatus, ServiceRequest
from connect311_notifier.i18n import language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.webhook_payload import (
    EVENT_TYPE,
    MAX_TEXT_CHARS,
    REQUEST_FIELDS,
    Shape,
    body,
    encode,
    event_payload,
    slack_payload,
    teams_payload,
    verification_payload,
    webhook_id,
)
from connect311_notifier.webhook_signing import new_secret, sign
from tests.unit.notifier.factories import T0, event, matched, request, subscription

LINKS = LinkBuilder("https://map.test", "secret")
TZ = ZoneInfo("America/New_York")
EMAIL = "resident.private@example.org"


def command(req: ServiceRequest | None = None, **kw: Any) -> SubscriberMatched:
    sub = subscription(email=EMAIL, label="Grandma's house")
    return matched(sub, event(req or request(), **kw))


def crime() -> ServiceRequest:
    sid = uuid.uuid4().hex[:10]
    return ServiceRequest(
        service_request_id=f"stpete_crime:{sid}",
        source="stpete_crime",
        source_request_id=sid,
        dataset="crime",
        service_name="Burglary",
        status=RequestStatus.CLOSED,
        raw_status="Reported",
        address="100 Block of Central Ave",
        lat=27.771,
        long=-82.641,
        requested_datetime=T0,
    )


def test_the_standard_payload_is_versioned_and_complete() -> None:
    cmd = command(previous=None)
    payload = event_payload(cmd, LINKS)
    assert set(payload) == {
        "type",
        "schema_version",
        "event_id",
        "occurred_at",
        "subscription_id",
        "event",
        "match",
        "request",
    }
    assert payload["type"] == EVENT_TYPE == "request.matched"
    assert payload["schema_version"] == 1
    assert payload["event_id"] == cmd.request_event.event_id
    assert payload["occurred_at"].endswith("Z")
    assert payload["subscription_id"] == cmd.subscription.subscription_id
    assert payload["event"] == {"kind": "opened", "previous_status": None, "changed_fields": []}
    assert payload["match"] == {"rule": "within 500 m of Home", "distance_m": 230.0}
    fields = payload["request"]
    assert set(fields) == REQUEST_FIELDS | {"media_url", "url", "map_url"}
    req = cmd.request_event.request
    assert fields["service_request_id"] == req.service_request_id
    assert fields["status"] == "open"
    assert fields["requested_datetime"] == "2024-05-06T14:30:00Z"
    assert fields["url"] == LINKS.request_url(req.service_request_id)
    assert fields["map_url"] == LINKS.map_url(req.service_request_id)


def test_an_update_carries_what_changed() -> None:
    req = request(status=RequestStatus.IN_PROGRESS, notes="Crew assigned")
    payload = event_payload(
        command(req, kind="updated", previous=RequestStatus.OPEN, changed_fields=("status",)),
        LINKS,
    )
    assert payload["event"] == {
        "kind": "updated",
        "previous_status": "open",
        "changed_fields": ["status"],
    }
    assert payload["request"]["status_notes"] == "Crew assigned"


def test_no_personal_data_of_the_subscriber_in_any_shape() -> None:
    cmd = command()
    for shape in Shape:
        sent = body(shape, cmd, LINKS, TZ).decode()
        assert EMAIL not in sent and "resident.private" not in sent
        assert "Grandma" not in sent  # the subscription's own label only via its rule text
        assert '"target"' not in sent and "radius" not in sent


def test_long_city_text_is_clipped_and_unsafe_media_dropped() -> None:
    long_text = "x" * MAX_TEXT
    req = request(description=long_text, notes=long_text).model_copy(
        update={"media_url": "javascript:alert(1)"}
    )
    payload = event_payload(command(req), LINKS)
    assert len(payload["request"]["description"]) == MAX_TEXT_CHARS
    assert payload["request"]["description"].endswith("…")
    assert len(payload["request"]["status_notes"]) == MAX_TEXT_CHARS
    assert payload["request"]["media_url"] is None
    # The spec recommends payloads under 20 kB; ours stay there with the longest text.
    assert len(encode(payload)) < 20_000
    photo = request().model_copy(update={"media_url": "https://city.example/p.jpg"})
    assert event_payload(command(photo), LINKS)["request"]["media_url"] == (
        "https://city.example/p.jpg"
    )


def test_encode_is_compact_utf8_and_reads_back() -> None:
    payload = event_payload(command(request(address="1 Calle Año")), LINKS)
    sent = encode(payload)
    assert b", " not in sent and b": " not in sent
    assert "Año".encode() in sent
    assert json.loads(sent) == payload
    assert encode(payload) == sent


def test_the_webhook_id_is_stable_across_redelivery_and_signable() -> None:
    cmd = command()
    replayed = SubscriberMatched.model_validate_json(cmd.model_dump_json())
    assert webhook_id(replayed) == webhook_id(cmd)
    assert webhook_id(cmd).startswith("msg_") and "." not in webhook_id(cmd)
    other_event = matched(cmd.subscription, event(cmd.request_event.request))
    other_sub = matched(subscription(), cmd.request_event)
    ids = {webhook_id(c) for c in (cmd, other_event, other_sub)}
    assert len(ids) == 3
    sign(new_secret(), webhook_id(cmd), 1_700_000_000, encode(event_payload(cmd, LINKS)))


def test_each_subscription_of_a_merged_command_gets_its_own_payload_and_id() -> None:
    cmd = command()
    second = subscription()
    merged = cmd.model_copy(
        update={"also": (AlsoMatched(subscription=second, matched_rule="all Potholes"),)}
    )
    parts = merged.parts()
    payloads = [event_payload(p, LINKS) for p in parts]
    assert [p["subscription_id"] for p in payloads] == [
        cmd.subscription.subscription_id,
        second.subscription_id,
    ]
    assert payloads[1]["match"]["rule"] == "all Potholes"
    assert len({webhook_id(p) for p in parts}) == 2


def test_the_verification_payload() -> None:
    payload = verification_payload("sub-1", "chal-123", "2024-05-06T14:30:00Z")
    assert payload == {
        "type": "webhook.verification",
        "schema_version": 1,
        "occurred_at": "2024-05-06T14:30:00Z",
        "subscription_id": "sub-1",
        "challenge": "chal-123",
    }


def _mrkdwn(blocks: list[dict[str, Any]]) -> list[str]:
    texts = []
    for block in blocks:
        for field in block.get("fields", []) + block.get("elements", []):
            if field.get("type") == "mrkdwn":
                texts.append(field["text"])
        if block.get("text", {}).get("type") == "mrkdwn":
            texts.append(block["text"]["text"])
    return texts


def test_slack_message_is_worded_like_the_email_and_city_text_is_inert() -> None:
    req = request(
        address="<!channel> 1 Main St & <https://evil.example|click>",
        description="Call <@U123> now *urgent*",
    )
    payload = slack_payload(command(req), LINKS, TZ)
    assert payload["text"].startswith("New request: Pothole")
    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "New request: Pothole", "emoji": False},
    }
    marked = _mrkdwn(blocks)
    assert any(
        "&lt;!channel&gt; 1 Main St &amp; &lt;https://evil.example|click&gt;" in t for t in marked
    )
    assert not any("<!" in t or "<http" in t for t in marked)
    plain = [b for b in blocks if b["type"] == "section" and "text" in b]
    assert plain[0]["text"] == {"type": "plain_text", "text": "Call <@U123> now *urgent*"}
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    urls = [b["url"] for b in buttons]
    assert urls == [
        LINKS.map_url(req.service_request_id),
        LINKS.request_url(req.service_request_id),
    ]
    assert blocks[-1]["elements"][0]["text"] == "within 500 m of Home"


def test_slack_header_and_text_stay_within_block_kit_limits() -> None:
    req = request(description="y" * MAX_TEXT).model_copy(update={"service_name": "S" * 300})
    blocks = slack_payload(command(req), LINKS, TZ)["blocks"]
    assert len(blocks[0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if "text" in b)


def test_teams_message_is_an_adaptive_card_without_free_text() -> None:
    req = request(description="[Pay your fine](https://evil.example)", notes="see [details](x)")
    payload = teams_payload(command(req), LINKS, TZ)
    assert payload["type"] == "message"
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "New request: Pothole"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Status:"] == "Open" and facts["Where:"] == "100 Central Ave"
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl", "Action.OpenUrl"]
    sent = json.dumps(payload)
    assert "evil.example" not in sent and "details" not in sent


def test_a_crime_incident_has_no_status_and_no_track_link() -> None:
    payload = teams_payload(command(crime()), LINKS, TZ)
    card = payload["attachments"][0]["content"]
    assert "Status:" not in {f["title"] for f in card["body"][1]["facts"]}
    assert len(card["actions"]) == 1
    assert "Crime incident" in card["body"][0]["text"]


def test_chat_shapes_speak_the_subscribers_language() -> None:
    spanish = language("es")
    slack = slack_payload(command(), LINKS, TZ, spanish)
    buttons = next(b for b in slack["blocks"] if b["type"] == "actions")["elements"]
    assert buttons[0]["text"]["text"] == spanish.gettext("See it on the map") != "See it on the map"
    teams = teams_payload(command(), LINKS, TZ, spanish)
    titles = [f["title"] for f in teams["attachments"][0]["content"]["body"][1]["facts"]]
    assert spanish.gettext("Status:") in titles and "Status:" not in titles
