"""The request guard of `connect311_bus.http_limits` on uvicorn's h11 protocol.

h11 buffers a request head until it is complete, so the head is checked in that buffer
before h11 parses it: a first line over the cap is 414, the rest of the head over its cap
(or never ending) is 431. h11's own buffer limit is set to the same budget as a backstop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from connect311_bus.http_limits import HttpLimits, ReadDeadlines, ignore, refuse

__all__ = ["LimitedH11Protocol"]


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with size caps and head/body deadlines."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    on_refused: ClassVar[Callable[[int], None]] = staticmethod(ignore)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        budget = self.limits.max_request_line_bytes + self.limits.max_header_bytes
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=budget + 4)
        self._refused = False
        self._deadlines = ReadDeadlines(self.loop, self.limits, self._head_late, self._body_late)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline: an idle new connection counts as a slow head."""
        super().connection_made(transport)
        self._deadlines.start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the deadlines."""
        self._deadlines.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Check a pending head's size, let h11 parse, then move the deadlines on."""
        if self._refused:
            return
        self._unset_keepalive_if_required()
        self.conn.receive_data(data)
        if self.conn.their_state is h11.IDLE:
            self._deadlines.start_head()
            if self._head_refused(self.conn.trailing_data[0]):
                return
        self.handle_events()
        if self._refused:
            return
        state = self.conn.their_state
        if state is not h11.IDLE:
            self._deadlines.stop_head()
        if state is h11.SEND_BODY:
            self._deadlines.start_body()
        else:
            self._deadlines.stop_body()

    def _head_refused(self, pending: bytes) -> bool:
        """Refuse the head waiting in h11's buffer if it is over a cap already."""
        max_line, max_headers = self.limits.max_request_line_bytes, self.limits.max_header_bytes
        line_end = pending.find(b"\r\n")
        if (len(pending) if line_end < 0 else line_end) > max_line + 32:  # + method, version
            self._refuse(414, f"request line over {max_line} bytes")
            return True
        if line_end >= 0:
            head_end = pending.find(b"\r\n\r\n", line_end)
            if (len(pending) if head_end < 0 else head_end) - line_end > max_headers:
                self._refuse(431, f"request headers over {max_headers} bytes")
                return True
        return False

    def _head_late(self) -> None:
        if self.conn.their_state is h11.IDLE and not self._refused:
            self._refuse(408, f"request head not complete within {self.limits.header_timeout_s}s")

    def _body_late(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self._refused:
            self._refuse(408, f"request body not complete within {self.limits.body_timeout_s}s")

    def _refuse(self, status: int, reason: str) -> None:
        self._refused = True
        self._deadlines.cancel()
        type(self).on_refused(status)
        in_body = self.conn.their_state is h11.SEND_BODY
        refuse(self.transport, self.cycle if in_body else None, self.client, status, reason)
