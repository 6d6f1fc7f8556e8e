"""Polite HTTP fetching: bounded bodies, back-off with jitter, Retry-After honoured."""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class FetchError(Exception):
    """A feed request failed for good (after retries, or a client error)."""


class TooLarge(FetchError):
    """A response exceeded the configured size bound and was refused."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with full jitter, capped."""

    base_s: float = 1.0
    cap_s: float = 60.0
    max_retry_after_s: float = 600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP date), if valid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


Sleep = Callable[[float], Awaitable[None]]


class Fetcher:
    """GETs a URL with retries on transport errors, 429 and 5xx; refuses oversized bodies."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_bytes: int,
        retries: int = 5,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff = backoff or Backoff()
        self.sleep = sleep

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> bytes:
        """The response body; raises TooLarge or FetchError."""
        for attempt in range(self.retries + 1):
            try:
                return await self._once(url, params)
            except (httpx.TransportError, _Retryable) as exc:
                if attempt == self.retries:
                    raise FetchError(f"{url}: {exc} (gave up after {attempt + 1} tries)") from exc
                wanted = exc.retry_after if isinstance(exc, _Retryable) else None
                delay = (
                    min(wanted, self.backoff.max_retry_after_s)
                    if wanted is not None
                    else self.backoff.delay(attempt)
                )
                await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, url: str, params: Mapping[str, str] | None) -> bytes:
        headers = {"Accept-Encoding": ACCEPT_ENCODING}
        async with self.client.stream("GET", url, params=params, headers=headers) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                raise _Retryable(f"HTTP {status}", retry_after)
            if status >= 400:
                snippet = (await response.aread())[:300].decode(errors="replace")
                raise FetchError(f"{url}: HTTP {status}: {snippet}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise TooLarge(f"{url}: {declared} bytes declared, limit {self.max_bytes}")
            return await self._bounded_body(response, url)

    async def _bounded_body(self, response: httpx.Response, url: str) -> bytes:
        """The decoded body, never holding more than the limit (a gzip bomb stops there too)."""
        decoder = _decoder(url, response.headers.get("Content-Encoding", ""))
        body = bytearray()
        try:
            async for raw in response.aiter_raw():
                # Decompress at most one byte past the limit: enough to know it is too large.
                room = self.max_bytes + 1 - len(body)
                body += decoder.decompress(raw, room) if decoder is not None else raw
                if len(body) > self.max_bytes:
                    raise TooLarge(f"{url}: more than {self.max_bytes} bytes, refused")
            if decoder is not None:
                body += decoder.flush()
        except zlib.error as exc:
            raise FetchError(f"{url}: corrupt compressed body ({exc})") from exc
        if len(body) > self.max_bytes:
            raise TooLarge(f"{url}: more than {self.max_bytes} bytes, refused")
        return bytes(body)


ACCEPT_ENCODING = "gzip, deflate"
"""The encodings the fetcher decodes itself (bounded); asked for on every request."""


def _decoder(url: str, content_encoding: str) -> Any:
    """A zlib decoder for the response's Content-Encoding (None for identity)."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    raise FetchError(f"{url}: unsupported Content-Encoding {content_encoding!r}")
