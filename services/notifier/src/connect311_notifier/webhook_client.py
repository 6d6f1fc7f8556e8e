"""Webhook delivery with httpx: one signed POST to the checked address, its outcome sorted.

Every attempt checks the URL and resolves its host again (`webhook_target.pin`), then
connects to that very address with the name in the Host header and the TLS server name
(SNI, and the certificate is verified for the name): a host that later resolves inside our
network is refused at send time, and nothing is looked up between the check and the
connection. Connections are not kept alive: a pooled connection is keyed by address, and
two names at one address must never share one opened (and verified) for the other.

Limits: the request body's size, one deadline for the whole attempt (a receiver that drips
its answer cannot hold a lane), and at most `max_response_bytes` read of the answer, which
is never stored, logged or shown (only its status code is kept; a verification handshake
compares it with the challenge). Redirects are not followed; proxies from the environment
are ignored (they would connect to the name, not the checked address).
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.util
import json
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import httpx

from connect311_notifier.outcome import Outcome
from connect311_notifier.webhook_outcome import HookResult, classify_status, parse_retry_after
from connect311_notifier.webhook_signing import signed_headers
from connect311_notifier.webhook_target import (
    Lookup,
    Pinned,
    Refused,
    TargetPolicy,
    pin,
    system_lookup,
)

__all__ = ["USER_AGENT", "DeliveryLimits", "WebhookClient", "pinned_url"]

USER_AGENT = "Connect311-Webhooks/1"
REASON_CHARS = 300


def _note_sniffio_absent() -> None:
    """httpcore imports sniffio on every request to learn which async library runs it;
    sniffio is not installed here (anyio 4 does without it), so each of those imports failed
    after searching every sys.path entry again: about a fifth of the notifier's CPU per
    webhook, measured (bench/notifier.py, section 7). A None entry in sys.modules is
    Python's own record of a module that is absent; httpcore then falls back to asyncio."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


_note_sniffio_absent()


@dataclass(frozen=True)
class DeliveryLimits:
    """Size and time limits of one attempt (the Standard Webhooks spec suggests 15-30 s)."""

    timeout_s: float = 15.0
    """The whole attempt: connect, TLS, send and the answer's status and body."""
    connect_timeout_s: float = 5.0
    dns_timeout_s: float = 5.0
    max_body_bytes: int = 64 * 1024
    max_response_bytes: int = 16 * 1024


def pinned_url(pinned: Pinned) -> str:
    """The URL with the checked address in place of the name (the port always explicit)."""
    ip = f"[{pinned.ip}]" if ":" in pinned.ip else pinned.ip
    target = pinned.target
    return f"{target.scheme}://{ip}:{target.port}{target.path}"


def _refused(refusal: Refused) -> HookResult:
    outcome = Outcome.TEMPORARY if refusal.temporary else Outcome.PERMANENT
    kind = "dns" if refusal.temporary else "refused_target"
    return HookResult(outcome, kind, reason=f"target refused: {refusal.reason}")


def _tls_failure(exc: BaseException) -> bool:
    """Whether an ssl error (a certificate not valid for the name, say) lies under `exc`."""
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore's error, which wraps ssl's: a short chain
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport_failure(exc: Exception) -> HookResult:
    """A failure with no HTTP answer: always temporary (the receiver's, not everyone's)."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return HookResult(Outcome.TEMPORARY, "timeout", reason="timed out")
    if isinstance(exc, httpx.ConnectError):
        kind = "tls" if _tls_failure(exc) else "connect"
    else:
        kind = "transport"  # the connection broke during the exchange
    detail = f"{type(exc).__name__}: {exc}"[:REASON_CHARS]
    return HookResult(Outcome.TEMPORARY, kind, reason=detail)


def _answers(body: bytes, challenge: str) -> bool:
    """Whether a handshake answer carries the challenge: as the whole body, or as
    {"challenge": ...} in JSON. Compared in constant time."""
    expected = challenge.encode()
    text = body.strip()
    if text.startswith(b"{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return False
        value = parsed.get("challenge") if isinstance(parsed, dict) else None
        text = value.encode() if isinstance(value, str) else b""
    return hmac.compare_digest(text, expected)


class WebhookClient:
    """Sends webhooks; never raises for anything the target or the network does."""

    def __init__(
        self,
        policy: TargetPolicy,
        limits: DeliveryLimits | None = None,
        *,
        verify: ssl.SSLContext | bool = True,
        lookup: Lookup = system_lookup,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.limits = limits or DeliveryLimits()
        self.lookup = lookup
        self.clock = clock
        self._http = httpx.AsyncClient(
            verify=verify,  # tests pass their own CA; production verifies against certifi
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=httpx.Timeout(self.limits.timeout_s, connect=self.limits.connect_timeout_s),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._http.aclose()

    async def deliver(
        self,
        url: str,
        msg_id: str,
        body: bytes,
        secrets: Sequence[str | bytes],
        *,
        challenge: str | None = None,
    ) -> HookResult:
        """One attempt: check and pin the target, sign with this attempt's time, POST.

        `secrets`: the current one first, then any being rotated out (each signs); a
        malformed secret or id raises ValueError (our data, not the target's doing).
        `challenge`: for the verification handshake, the answer must carry it.
        """
        if len(body) > self.limits.max_body_bytes:
            return HookResult(Outcome.PERMANENT, "too_large", reason=f"body of {len(body)} bytes")
        pinned = await pin(url, self.policy, self.lookup, self.limits.dns_timeout_s)
        if isinstance(pinned, Refused):
            return _refused(pinned)
        return await self.post(pinned, msg_id, body, secrets, challenge=challenge)

    async def post(
        self,
        pinned: Pinned,
        msg_id: str,
        body: bytes,
        secrets: Sequence[str | bytes],
        *,
        challenge: str | None = None,
    ) -> HookResult:
        """POST to an already pinned target (`deliver` pins it first)."""
        target = pinned.target
        headers = signed_headers(secrets, msg_id, int(self.clock()), body)
        headers["Content-Type"] = "application/json"
        headers["Host"] = target.host_header
        # The name for TLS (SNI and certificate check) while the socket goes to the address;
        # an address given as the host is verified as an address (no SNI for IPs).
        extensions = {"sni_hostname": target.host} if target.address is None else {}
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                async with self._http.stream(
                    "POST", pinned_url(pinned), content=body, headers=headers, extensions=extensions
                ) as response:
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
                    kept = await self._read(response, keep=challenge is not None)
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL) as exc:
            return _transport_failure(exc)
        result = classify_status(status, parse_retry_after(retry_after, self.clock()))
        if (
            challenge is not None
            and result.outcome is Outcome.SENT
            and not _answers(kept, challenge)
        ):
            return HookResult(
                Outcome.PERMANENT,
                "verification_failed",
                status,
                "the answer did not carry the challenge",
            )
        return result

    async def _read(self, response: httpx.Response, keep: bool) -> bytes:
        """Read at most max_response_bytes of the answer; keep them only when asked."""
        limit = self.limits.max_response_bytes
        kept = bytearray()
        seen = 0
        async for chunk in response.aiter_raw():
            seen += len(chunk)
            if keep:
                kept += chunk[: max(0, limit - len(kept))]
            if seen >= limit:
                break  # the rest is never read: the connection closes with the stream
        return bytes(kept)
