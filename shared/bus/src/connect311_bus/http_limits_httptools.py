"""The request guard of `connect311_bus.http_limits` on uvicorn's httptools protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connect311_bus.http_limits import HttpLimits, ReadDeadlines, ignore, refuse

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
        self._deadlines = ReadDeadlines(self.loop, self.limits, self._head_late, self._body_late)

    # Connection events
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline: an idle new connection counts as a slow head."""
        super().connection_made(transport)
        self._deadlines.start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the deadlines."""
        self._deadlines.cancel()
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
        self._deadlines.start_head()

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
        self._deadlines.stop_head()
        super().on_headers_complete()
        self._deadlines.start_body()

    def on_body(self, body: bytes) -> None:
        """Pass the body on unless the request was refused."""
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """The body is in: stop its deadline."""
        self._deadlines.stop_body()
        if not self._refused:
            super().on_message_complete()

    # Refusals
    def _head_late(self) -> None:
        if self._in_head and not self._refused:
            self._refuse(408, f"request head not complete within {self.limits.header_timeout_s}s")

    def _body_late(self) -> None:
        cycle = self.cycle
        if not self._refused and cycle is not None and cycle.more_body:
            self._refuse(408, f"request body not complete within {self.limits.body_timeout_s}s")

    def _refuse(self, status: int, reason: str) -> None:
        self._refused = True
        self._deadlines.cancel()
        type(self).on_refused(status)
        refuse(self.transport, None if self._in_head else self.cycle, self.client, status, reason)
