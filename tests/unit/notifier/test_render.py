"""Emails rendered, serialized to bytes, parsed back and checked like a mail client would."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import TypeAdapter

from connect311_contracts.request import RequestStatus
from connect311_contracts.subscriptions import (
    SubscriptionFilters,
    SubscriptionStatus,
    SubscriptionTarget,
)
from connect311_contracts.tokens import (
    InvalidToken,
    TokenPurpose,
    read_subscription_token,
    sign_subscription_token,
)
from connect311_notifier.link_tokens import token_signer
from connect311_notifier.links import LinkBuilder
from connect311_notifier.render import Renderer, clean_header
from connect311_notifier.settings import Branding, NotifierSettings
from tests.unit.notifier.factories import confirmation, event, matched, request, subscription

SECRET = "test-secret-key"
BASE = "https://alerts.example.city"
NOW = datetime(2024, 5, 6, 18, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


@pytest.fixture
def renderer() -> Renderer:
    settings = NotifierSettings(
        agencies={"Public Works": Branding(from_name="St. Pete Public Works", footer="PW footer")},
        from_address="alerts@example.city",
    )
    return Renderer.create(settings, LinkBuilder(BASE, SECRET))


def reparse(message: Message) -> EmailMessage:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    return plain.get_content(), html.get_content()


def test_alert_has_parts_headers_links_and_escapes_hostile_text(renderer: Renderer) -> None:
    req = request(description=HOSTILE, notes="Crew <b>scheduled</b> — Grüße ☃")
    command = matched(ev=event(req))
    sub_id = command.subscription.subscription_id
    msg = reparse(renderer.alert(command, False, "<m1@example.city>", NOW))
    text, html = parts(msg)

    assert msg["Message-ID"] == "<m1@example.city>"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["From"].addresses[0].display_name == "St. Pete Public Works"
    assert msg["From"].addresses[0].addr_spec == "alerts@example.city"
    assert msg["To"] == command.subscription.email
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<(.+)>", msg["List-Unsubscribe"])
    assert unsubscribe is not None
    assert unsubscribe.group(1).startswith(f"{BASE}/api/subscriptions/unsubscribe?token=")

    # Hostile text: escaped in HTML, verbatim in plain text, never executable.
    assert "<script>" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;scheduled&lt;/b&gt;" in html
    assert HOSTILE in text
    assert "Grüße ☃" in text and "Grüße ☃" in html

    request_url = f"{BASE}/requests/stpete%3A{req.source_request_id}"
    for body in (text, html):
        assert request_url in body
        assert "within 500 m of Home" in body  # why
        assert "230 m" in body and "100 Central Ave" in body  # where
        assert "Public Works" in body and "Pothole" in body
        assert f"{BASE}/subscriptions/manage?token=" in body
    assert "PW footer" in text
    assert sub_id in read_token(unsubscribe.group(1), TokenPurpose.UNSUBSCRIBE)


def read_token(url: str, purpose: TokenPurpose) -> str:
    (token,) = parse_qs(urlparse(url).query)["token"]
    return read_subscription_token(SECRET, purpose, token, max_age_s=3600)


def test_unsubscribe_and_manage_tokens_round_trip(renderer: Renderer) -> None:
    command = matched()
    sub_id = command.subscription.subscription_id
    msg = reparse(renderer.alert(command, False, "<m2@example.city>", NOW))
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    text, _ = parts(msg)
    (manage,) = re.findall(rf"{re.escape(BASE)}/subscriptions/manage\?token=\S+", text)
    assert read_token(unsubscribe, TokenPurpose.UNSUBSCRIBE) == sub_id
    assert read_token(manage, TokenPurpose.MANAGE) == sub_id
    with pytest.raises(InvalidToken):
        read_token(unsubscribe, TokenPurpose.MANAGE)  # a token for one purpose only
    with pytest.raises(InvalidToken):
        (token,) = parse_qs(urlparse(unsubscribe).query)["token"]
        read_subscription_token("another-secret", TokenPurpose.UNSUBSCRIBE, token, None)


@pytest.mark.parametrize("sub_id", ["sub-1", "a" * 60, "ünï-cødé/ä", "9f0c" * 9])
def test_link_tokens_are_the_contracts_tokens_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch, sub_id: str
) -> None:
    """The notifier's cheaper signing (link_tokens) writes the contract's token exactly,
    compressed payloads ("a" * 60) included, so the map API reads every link as before."""
    monkeypatch.setattr(time, "time", lambda: 1_765_000_000.7)
    for purpose in TokenPurpose:
        mine = token_signer(SECRET, purpose).sign(sub_id)
        assert mine == sign_subscription_token(SECRET, purpose, sub_id)
        assert read_subscription_token(SECRET, purpose, mine, None) == sub_id


def test_follow_update_shows_the_transition_and_notes(renderer: Renderer) -> None:
    req = request(status=RequestStatus.CLOSED, notes="Filled the pothole.")
    sub = subscription(follow=req.service_request_id, label=None)
    command = matched(sub, event(req, "closed", previous=RequestStatus.IN_PROGRESS))
    msg = reparse(renderer.alert(command, True, "<m3@example.city>", NOW))
    text, html = parts(msg)
    assert "is now Closed" in msg["Subject"]
    assert "In progress -> Closed" in text
    assert "In progress &rarr; <strong>Closed</strong>" in html
    assert "Filled the pothole." in text and "Filled the pothole." in html


def test_confirmation_carries_the_confirm_link_and_no_list_headers(renderer: Renderer) -> None:
    command = confirmation(subscription(status=SubscriptionStatus.PENDING, label='Mom\'s "place"'))
    msg = reparse(renderer.confirmation(command, "<m4@example.city>", NOW))
    text, html = parts(msg)
    assert command.confirm_url in text
    assert f'href="{command.confirm_url}"' in html
    assert "Mom" not in text and "Mom" not in html  # the label is the requester's text
    assert "within 500 m of a point on the map" in text
    assert msg["List-Unsubscribe"] is None
    assert msg["From"].addresses[0].display_name == "Connect311"


PHISHING = (
    "URGENT: your water will be shut off. Pay at https://evil.example/pay "
    "<a href='http://evil.example'>here</a> www.evil.example"
)


@pytest.mark.parametrize(
    "target",
    [
        None,
        {"kind": "corridor", "coordinates": [[-82.6, 27.7], [-82.5, 27.8]], "width_m": 1500},
        {"kind": "citywide"},
        {"kind": "follow", "service_request_id": "stpete:123"},
    ],
)
def test_confirmation_shows_no_requester_text_and_no_other_link(
    renderer: Renderer, target: dict[str, object] | None
) -> None:
    hostile = {"service_codes": (PHISHING,), "agencies": (PHISHING, "x"), "datasets": (PHISHING,)}
    base = subscription(status=SubscriptionStatus.PENDING, label=PHISHING)
    update: dict[str, object] = {"filters": SubscriptionFilters(**hostile)}
    if target is not None:
        update["target"] = TypeAdapter(SubscriptionTarget).validate_python(target)
    command = confirmation(base.model_copy(update=update))
    msg = reparse(renderer.confirmation(command, "<m9@example.city>", NOW))
    text, html = parts(msg)
    for body in (text, html, str(msg["Subject"])):
        assert "evil" not in body and "URGENT" not in body
    links = set(re.findall(r"https?://[^\s\"'<>]+", text + html))
    assert links == {command.confirm_url}  # the confirm link is the only link
    assert "1 category" in text and "2 departments" in text and "1 dataset" in text


def test_header_injection_in_untrusted_fields_is_flattened(renderer: Renderer) -> None:
    req = request(address="1 Main St\r\nBcc: victim@example.org")
    msg = reparse(renderer.alert(matched(ev=event(req)), False, "<m5@example.city>", NOW))
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"] and "Bcc: victim" in msg["Subject"]


def test_non_ascii_subject_and_sender_name_round_trip(renderer: Renderer) -> None:
    title = "Grüße ☃ " + "x" * 90  # long enough for several RFC 2047 words
    settings = NotifierSettings(
        from_name="Ciudad de São Petersburgo", from_address="a@example.city"
    )
    renderer = Renderer.create(settings, LinkBuilder(BASE, SECRET))
    req = request(address=title)
    message = renderer.alert(matched(ev=event(req)), False, "<m6@example.city>", NOW)
    raw = message.as_bytes()
    assert raw.isascii()  # headers RFC 2047, non-ASCII bodies quoted-printable
    assert max(len(line) for line in raw.splitlines()) <= 998
    msg = reparse(message)
    assert msg["Subject"] == clean_header(f"New request: Pothole at {title}")
    assert msg["From"].addresses[0].display_name == "Ciudad de São Petersburgo"
    text, html = parts(msg)
    assert "Grüße ☃" in text and "Grüße ☃" in html


def test_internationalized_address_keeps_its_utf8_form(renderer: Renderer) -> None:
    command = matched(subscription(email="jürgen@exämple.org"))
    message = renderer.alert(command, False, "<m7@example.city>", NOW)
    assert isinstance(message, EmailMessage)  # SMTPUTF8 needs the modern policy
    reparsed = message_from_bytes(message.as_bytes(policy=policy.SMTPUTF8), policy=policy.default)
    assert reparsed["To"] == "jürgen@exämple.org"
    text, _ = parts(reparsed)  # type: ignore[arg-type]
    assert "100 Central Ave" in text


def test_ascii_bodies_are_readable_in_the_raw_message(renderer: Renderer) -> None:
    raw = renderer.alert(matched(), False, "<m8@example.city>", NOW).as_bytes()
    assert raw.count(b"Content-Transfer-Encoding: 7bit") == 2
    assert b"Pothole in the right lane" in raw and b"within 500 m of Home" in raw
