"""Request-line and header size caps and read timeouts for the public uvicorn servers.

uvicorn (httptools) accepts a URL or a header block of any size and waits forever for a
request's head or body. This protocol refuses, before the application sees anything:
a request line over `max_request_line_bytes` with 414, headers over `max_header_bytes` with
431, a head not complete `header_timeout_s` after its first byte (or after the connection
opened: slowloris) with 408, and a body not complete `body_timeout_s` after its head with 408.
Each refusal closes the connection. Use it as uvicorn's protocol class:
`uvicorn.Config(app, http=guarded_http(limits, on_refused))`.

uvicorn picks httptools when it is installed (uvicorn[standard]: the map API) and h11
otherwise (the ingestor's own image); so does `guarded_http`, with the same limits.
"""

from __future__ import annotations

import asyncio
import http
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpLimits", "ReadDeadlines", "guarded_http", "ignore", "refuse"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    """What one request may send before the application sees it, and how slowly."""

    max_request_line_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0


class ReadDeadlines:
    """One connection's two read deadlines: its request head's and its body's.

    Each calls its callback once when it runs out, unless stopped first; starting one that
    is already running changes nothing. Both protocols (h11, httptools) keep theirs here.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: HttpLimits,
        head_late: Callable[[], None],
        body_late: Callable[[], None],
    ) -> None:
        self._loop, self._limits = loop, limits
        self._head_late, self._body_late = head_late, body_late
        self._head: asyncio.TimerHandle | None = None
        self._body: asyncio.TimerHandle | None = None

    def start_head(self) -> None:
        """The head must be complete within header_timeout_s from now."""
        if self._head is None:
            self._head = self._loop.call_later(self._limits.header_timeout_s, self._head_out)

    def stop_head(self) -> None:
        """The head is in."""
        if self._head is not None:
            self._head.cancel()
            self._head = None

    def start_body(self) -> None:
        """The body must be complete within body_timeout_s from now."""
        if self._body is None:
            self._body = self._loop.call_later(self._limits.body_timeout_s, self._body_out)

    def stop_body(self) -> None:
        """The body is in."""
        if self._body is not None:
            self._body.cancel()
            self._body = None

    def cancel(self) -> None:
        """Stop both (a refusal, or the connection went away)."""
        self.stop_head()
        self.stop_body()

    def _head_out(self) -> None:
        self._head = None
        self._head_late()

    def _body_out(self) -> None:
        self._body = None
        self._body_late()


def ignore(_status: int) -> None:
    """The default refusal hook: nothing to count."""


def refuse(
    transport: asyncio.Transport,
    cycle: Any | None,
    client: tuple[str, int] | None,
    status: int,
    reason: str,
) -> None:
    """Answer `status` (unless a response already started) and close the connection.

    `cycle` is uvicorn's request/response cycle when the app is already running (a body
    deadline); its receive() then reports a disconnect and anything it sends is dropped.
    """
    log.info(
        "refused a request from %s with %d: %s",
        f"{client[0]}:{client[1]}" if client else "?",
        status,
        reason,
    )
    if cycle is not None and not cycle.response_complete:
        cycle.disconnected = True
        cycle.message_event.set()
        if cycle.response_started:
            transport.close()
            return
    if transport.is_closing():
        return
    phrase = http.HTTPStatus(status).phrase
    body = f"{status} {phrase}: {reason}\n".encode()
    transport.write(
        f"HTTP/1.1 {status} {phrase}\r\n".encode()
        + b"content-type: text/plain; charset=utf-8\r\n"
        + f"content-length: {len(body)}\r\n".encode()
        + b"connection: close\r\n\r\n"
        + body
    )
    transport.close()


def guarded_http(
    limits: HttpLimits, on_refused: Callable[[int], None] | None = None, *, parser: str = "auto"
) -> type[asyncio.Protocol]:
    """A protocol class for `uvicorn.Config(http=...)` enforcing `limits`.

    `on_refused(status)` is called once per refused request (e.g. to count it). `parser` is
    "httptools", "h11" or "auto" (httptools when installed, as uvicorn's own "auto").
    """
    if parser == "auto":
        parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    base: type[asyncio.Protocol]
    if parser == "httptools":
        from connect311_bus.http_limits_httptools import LimitedHttpToolsProtocol

        base = LimitedHttpToolsProtocol
    else:
        from connect311_bus.http_limits_h11 import LimitedH11Protocol

        base = LimitedH11Protocol
    hook = on_refused or ignore
    return type(
        "GuardedHttpProtocol", (base,), {"limits": limits, "on_refused": staticmethod(hook)}
    )
