"""A local mail catcher: an SMTP server that keeps mail, and a web inbox to read it.

For local runs only (production uses a real SMTP relay; compose uses Mailpit).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from connect311_local.mailview import FRAME_SANDBOX, linkify, links_open_outside

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)
TEMPLATES.filters["linkify"] = linkify
TEMPLATES.filters["links_open_outside"] = links_open_outside
TEMPLATES.globals["frame_sandbox"] = FRAME_SANDBOX


@dataclass(frozen=True)
class CaughtMessage:
    """One message as received, with its readable parts."""

    id: int
    received_at: datetime
    mail_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    text: str
    html: str | None
    headers: tuple[tuple[str, str], ...]

    def summary(self) -> dict[str, Any]:
        """The message as JSON for the inbox API."""
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "from": self.mail_from,
            "to": list(self.rcpt_tos),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "headers": dict(self.headers),
        }


class Inbox:
    """The newest messages (bounded), safe to use from the SMTP thread and the web app."""

    def __init__(self, keep: int = 2000) -> None:
        self._messages: deque[CaughtMessage] = deque(maxlen=keep)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> CaughtMessage:
        """Parse and keep one message."""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            message = CaughtMessage(
                id=next(self._ids),
                received_at=datetime.now(UTC),
                mail_from=mail_from,
                rcpt_tos=tuple(rcpt_tos),
                subject=str(parsed.get("Subject", "")),
                text=_part(parsed, "plain") or "",
                html=_part(parsed, "html"),
                headers=tuple((k, str(v)) for k, v in parsed.items()),
            )
            self._messages.append(message)
        return message

    def all(self) -> list[CaughtMessage]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._messages))

    def get(self, message_id: int) -> CaughtMessage | None:
        """One message by id, if still kept."""
        return next((m for m in self.all() if m.id == message_id), None)

    def clear(self) -> None:
        """Forget every message."""
        with self._lock:
            self._messages.clear()


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    return None if body is None else str(body.get_content())


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw: Any = envelope.original_content or envelope.content
        self.inbox.add(raw, str(envelope.mail_from), list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def start_smtp(inbox: Inbox, port: int, host: str = "127.0.0.1") -> Controller:
    """Start the catcher's SMTP server in a background thread."""
    controller = Controller(_Handler(inbox), hostname=host, port=port)
    controller.start()
    return controller


def inbox_app(inbox: Inbox) -> FastAPI:
    """The web inbox: a list, each message's text and HTML, and a JSON API."""
    app = FastAPI(title="Connect311 local mail catcher", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return TEMPLATES.get_template("inbox.html").render(messages=inbox.all())

    @app.get("/messages/{message_id}", response_class=HTMLResponse)
    def show(message_id: int) -> str:
        message = inbox.get(message_id)
        if message is None:
            raise HTTPException(404, "no such message (the catcher keeps the newest 2,000)")
        return TEMPLATES.get_template("message.html").render(message=message)

    @app.get("/api/messages")
    def messages() -> list[dict[str, Any]]:
        return [m.summary() for m in inbox.all()]

    @app.delete("/api/messages", status_code=204)
    def clear() -> None:
        inbox.clear()

    return app
