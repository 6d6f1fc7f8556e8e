"""Emails say why a request was closed, in a resident's words, with the city's own status."""

from __future__ import annotations

import html as html_lib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from connect311_contracts.request import ClosedReason, RequestStatus, ServiceRequest
from connect311_notifier.links import LinkBuilder
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.factories import event, matched, request, subscription

NOW = datetime(2024, 5, 6, 18, 0, tzinfo=UTC)
CASES = [
    (ClosedReason.DUPLICATE, "Closed", "Closed — duplicate of another request"),
    (
        ClosedReason.REFERRED,
        "Referred to Law",
        "Closed — referred to another agency (city status: Referred to Law)",
    ),
    (ClosedReason.CANCELLED, "Canceled", "Closed — cancelled"),
    (ClosedReason.FIXED, "Completed", "Closed — completed"),
]


@pytest.fixture
def renderer() -> Renderer:
    settings = NotifierSettings(from_address="alerts@example.city")
    return Renderer.create(settings, LinkBuilder("https://alerts.example.city", "secret"))


def _closed(reason: ClosedReason, raw: str) -> ServiceRequest:
    req = request(status=RequestStatus.CLOSED)
    return req.model_copy(update={"closed_reason": reason, "raw_status": raw})


def _bodies(message: object) -> tuple[str, str, str]:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)  # type: ignore[attr-defined]
    assert isinstance(parsed, EmailMessage)
    plain, rich = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and rich is not None
    return str(parsed["Subject"]), plain.get_content(), html_lib.unescape(rich.get_content())


@pytest.mark.parametrize(("reason", "raw", "words"), CASES)
def test_instant_alert_names_the_close_reason(
    renderer: Renderer, reason: ClosedReason, raw: str, words: str
) -> None:
    command = matched(ev=event(_closed(reason, raw), "closed", previous=RequestStatus.OPEN))
    _subject, text, html = _bodies(renderer.alert(command, False, "<a@x>", NOW))
    assert f"Status: {words}\n" in text
    assert f"<strong>{words}</strong>" in html


@pytest.mark.parametrize(("reason", "raw", "words"), CASES)
def test_follow_update_subject_and_body_name_the_close_reason(
    renderer: Renderer, reason: ClosedReason, raw: str, words: str
) -> None:
    req = _closed(reason, raw)
    sub = subscription(follow=req.service_request_id, label=None)
    command = matched(sub, event(req, "closed", previous=RequestStatus.IN_PROGRESS))
    subject, text, html = _bodies(renderer.alert(command, True, "<f@x>", NOW))
    assert subject == f"Update: Pothole is now {words}"
    assert f"In progress -> {words}" in text
    assert f"In progress → <strong>{words}</strong>" in html


def test_digest_lists_each_closed_request_with_its_reason(renderer: Renderer) -> None:
    sub = subscription()
    commands = [
        matched(sub, event(_closed(reason, raw), "closed", previous=RequestStatus.OPEN))
        for reason, raw, _words in CASES
    ]
    _subject, text, html = _bodies(renderer.digest(commands, "daily", "<d@x>", NOW))
    for _reason, _raw, words in CASES:
        assert words in text and words in html
