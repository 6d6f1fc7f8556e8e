"""The request guard of `connect311_bus.http_limits` on uvicorn's httptools protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connect311_bus.http_limits import HttpLimits, ignore, refuse

__all__ = ["LimitedHttpToolsProtocol"]


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with size caps and head/body deadlines."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    on_refused: ClassVar[Callable[[int], None]] = staticmethod(ignore)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._in_head = True  # reading a request line and headers (or waiting for the first)
        self._head_bytes = 0  # raw bytes received while in the head: bounds one giant header
        self._header_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # Connection events
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline: an idle new connection counts as a slow head."""
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the deadlines."""
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count head bytes, parse, then refuse a head over its budget (one giant header)."""
        if self._refused:
            return  # answered and closing: the rest is not read
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        budget = self.limits.max_request_line_bytes + self.limits.max_header_bytes
        if not self._refused and self._in_head and self._head_bytes > budget:
            self._refuse(431, f"request headers over {self.limits.max_header_bytes} bytes")

    # Parser callbacks
    def on_message_begin(self) -> None:
        """A new request: its head gets the full budget and deadline."""
        super().on_message_begin()
        self._in_head, self._head_bytes, self._header_bytes = True, 0, 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def on_url(self, url: bytes) -> None:
        """Refuse a request line over its cap as soon as it is (414)."""
        if self._refused:
            return
        super().on_url(url)
        if len(self.url) > self.limits.max_request_line_bytes:
            self._refuse(414, f"request line over {self.limits.max_request_line_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        """Refuse headers over their cap (431)."""
        if self._refused:
            return
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request headers over {self.limits.max_header_bytes} bytes")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: stop its deadline, start the body's."""
        if self._refused:
            return
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_late)

    def on_body(self, body: bytes) -> None:
        """Pass the body on unless the request was refused."""
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """The body is in: stop its deadline."""
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if not self._refused:
            super().on_message_complete()

    # Refusals
    def _head_late(self) -> None:
        self._head_timer = None
        if self._in_head and not self._refused:
            self._refuse(408, f"request head not complete within {self.limits.header_timeout_s}s")

    def _body_late(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if not self._refused and cycle is not None and cycle.more_body:
            self._refuse(408, f"request body not complete within {self.limits.body_timeout_s}s")

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _refuse(self, status: int, reason: str) -> None:
        self._refused = True
        self._cancel_timers()
        type(self).on_refused(status)
        refuse(self.transport, None if self._in_head else self.cycle, self.client, status, reason)
