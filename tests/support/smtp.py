"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts, parsed."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class SmtpSink:
    """Collects messages; `fail_with` makes the server answer an SMTP error instead."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    fail_with: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold_next: bool = False
    """Set it to park the next message before the server answers its DATA (see `holding`)."""
    holding: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    pipelining: bool = True
    """Offer RFC 2920 PIPELINING in the EHLO answer (as Postfix does)."""
    refuse: dict[str, str] = field(default_factory=dict)
    """Answer 'MAIL' or 'RCPT' with this reply instead of accepting it."""
    drop_on: str | None = None
    """'MAIL' or 'RCPT': close the connection instead of answering it (once)."""
    pipelined: int = 0
    """Envelopes whose RCPT and DATA had already arrived when their MAIL was read."""

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd hook: the usual answer, with PIPELINING when offered."""
        session.host_name = hostname  # the hook's duty (aiosmtpd checks it on MAIL)
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """aiosmtpd hook: note whether the envelope came in one write (pipelined)."""
        # The rest of the envelope is already read into the server's buffer if it was.
        if b"DATA\r\n" in server._reader._buffer:  # type: ignore[union-attr]
            self.pipelined += 1
        if reply := self._refusal(server, "MAIL"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """aiosmtpd hook: accept the recipient, or refuse it as told."""
        if reply := self._refusal(server, "RCPT"):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    def _refusal(self, server: SMTP, command: str) -> str | None:
        if self.drop_on == command:
            self.drop_on = None
            assert server.transport is not None
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        return self.refuse.get(command)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd hook: accept (and keep) or refuse one message."""
        if self.fail_with:
            return self.fail_with
        if self.hold_next:
            # A sender killed while it waits here never got a 250: the message was never
            # delivered (a real server drops it too), so its resend is its only copy.
            self.hold_next = False
            self.holding.set()
            await asyncio.to_thread(self.released.wait)
            return "451 Requested action aborted: the sender went away"
        raw: Any = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[EmailMessage]:
        """Block until at least `count` messages arrived; fail clearly otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")


def start_smtp_sink(port: int, sink: SmtpSink | None = None) -> tuple[Controller, SmtpSink]:
    """Start an SMTP server on 127.0.0.1:port; stop it with `controller.stop()`."""
    sink = sink or SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, sink
