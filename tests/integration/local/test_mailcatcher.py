"""The local mail catcher receives real SMTP mail and shows it safely in its web inbox."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

from fastapi.testclient import TestClient

from connect311_local.broker import free_port
from connect311_local.mailcatcher import Inbox, inbox_app, start_smtp


def _send(port: int, subject: str, html: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alerts@city.example", "resident@example.org", subject
    msg.set_content("Plain text: pothole on 1st Ave")
    msg.add_alternative(html, subtype="html")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.send_message(msg)


def _wait(inbox: Inbox, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(inbox.all()) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_inbox_lists_and_shows_received_mail() -> None:
    inbox, port = Inbox(), free_port()
    controller = start_smtp(inbox, port)
    try:
        _send(port, "New pothole near Home", "<p>Pothole</p>")
        _wait(inbox, 1)
    finally:
        controller.stop()
    client = TestClient(inbox_app(inbox))
    (listed,) = client.get("/api/messages").json()
    assert listed["subject"] == "New pothole near Home"
    assert listed["to"] == ["resident@example.org"]
    assert "pothole on 1st Ave" in listed["text"]
    assert "New pothole near Home" in client.get("/").text
    assert client.get(f"/messages/{listed['id']}").status_code == 200
    assert client.get("/messages/999").status_code == 404


def test_hostile_html_is_shown_only_inside_a_sandboxed_frame() -> None:
    inbox, port = Inbox(), free_port()
    controller = start_smtp(inbox, port)
    try:
        _send(port, "<script>alert(1)</script>", '<img src=x onerror="alert(1)">')
        _wait(inbox, 1)
    finally:
        controller.stop()
    client = TestClient(inbox_app(inbox))
    page = client.get("/messages/1").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    sandbox = '<iframe sandbox="allow-popups allow-popups-to-escape-sandbox"'
    assert sandbox in page  # no allow-scripts: the message's scripts never run
    assert 'srcdoc="&lt;base target=&#34;_blank&#34;&gt;&lt;img' in page
    assert "<img src=x" not in page
    client.delete("/api/messages")
    assert client.get("/api/messages").json() == []
