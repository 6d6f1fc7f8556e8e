"""RFC 2920 PIPELINING on an aiosmtplib connection: MAIL, RCPT and DATA in one write.

aiosmtplib sends each command and waits for its reply (four round trips per email: MAIL,
RCPT, DATA, body). When the server's EHLO names PIPELINING, `send_pipelined` writes the
envelope in one go and reads the replies after (two round trips: envelope, body). aiosmtplib
still opens the session (connect, EHLO, STARTTLS, AUTH) and owns the connection between
messages; for one exchange a `Replies` reader stands in for its protocol on the transport,
since aiosmtplib's reader expects one reply per command it wrote and drops the rest.

Failures are raised as the aiosmtplib exceptions its own `sendmail` raises for the same
reply (sender refused, every recipient refused, DATA or body refused, connection lost, read
timeout), judged in the order the commands were sent, so `mailer.classify` sorts them as
before. The message counts as sent only after the 250 for its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections import deque
from dataclasses import dataclass
from email.utils import getaddresses
from typing import cast

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import SMTPProtocol, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse

__all__ = [
    "Envelope",
    "Replies",
    "addresses",
    "crlf_lines",
    "dot_stuffed",
    "greet",
    "send_pipelined",
]

MAX_REPLY_BYTES = 32 * 1024
"""Unparsed reply bytes held at most (aiosmtplib's bound too): a server that streams
garbage ends the exchange instead of filling memory."""
CLOSING = 421
"""The server is closing the connection (aiosmtplib closes its side on it too)."""
_PLAIN = re.compile(r"(?:[A-Za-z0-9_+-]+\.)*[A-Za-z0-9_+-]+@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+")
"""A bare address that the email package's parser returns as it is (most recipients)."""


def addresses(header: str) -> list[str]:
    """The addresses in a From or To value, as email.utils.getaddresses reads them: a bare
    one as it is, others parsed once (a From with its name is the same for every email);
    the parser cost as much as a tenth of sending a message."""
    return [header] if _PLAIN.fullmatch(header) else list(_parsed(header))


@functools.lru_cache(maxsize=64)
def _parsed(header: str) -> tuple[str, ...]:
    return tuple(addr for _, addr in getaddresses([header]) if addr)


def crlf_lines(message: bytes) -> bytes:
    """aiosmtplib's normalize_message_line_endings (every CR, LF or CRLF a CRLF, one at the
    end), without its regex for what the compat32 generator writes: LF line ends only, or
    CRLF only. Its regex over each body was about a tenth of an email's CPU."""
    if b"\r" not in message:
        body = message.replace(b"\n", b"\r\n")
    elif message.count(b"\r") == message.count(b"\n") == message.count(b"\r\n"):
        body = message  # CRLF already: no lone CR or LF
    else:
        return normalize_message_line_endings(message)
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def dot_stuffed(body: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency: a '.' more before each line that starts with one, as
    aiosmtplib's PERIOD_REGEX substitution writes it (`body` has CRLF line ends, so every
    line but the first starts after an LF)."""
    if body.startswith(b"."):
        body = b"." + body
    return body.replace(b"\n.", b"\n..")


def _quoted(address: str) -> str:
    """<address> for a command line, as aiosmtplib's quote_address writes (and checks) it."""
    return f"<{address}>" if _PLAIN.fullmatch(address) else quote_address(address)


class Replies(asyncio.Protocol):
    """The transport's protocol while a pipelined group is in flight: parses every reply
    that arrives, in order, and hands aiosmtplib's protocol what concerns the connection."""

    def __init__(self, inner: SMTPProtocol) -> None:
        self.inner = inner
        self.buffer = bytearray()
        self.replies: deque[SMTPResponse] = deque()
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            while (reply := self._take()) is not None:
                self.replies.append(reply)
            if len(self.buffer) > MAX_REPLY_BYTES:
                raise aiosmtplib.SMTPResponseException(-1, "Response too long")
        except aiosmtplib.SMTPResponseException as exc:
            self.buffer.clear()
            self.error = self.error or exc
        self._wake()

    def _take(self) -> SMTPResponse | None:
        """The first complete reply in the buffer (multi-line aware), parsed as aiosmtplib
        parses it; None while it is incomplete."""
        lines: list[bytes] = []
        offset = 0
        while (end := self.buffer.find(b"\n", offset)) != -1:
            line = bytes(self.buffer[offset : end + 1])
            offset = end + 1
            lines.append(line)
            if line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    text = line.decode("utf-8", errors="ignore")
                    raise aiosmtplib.SMTPResponseException(
                        -1, f"Malformed SMTP response line: {text}"
                    ) from None
                del self.buffer[:offset]
                message = b"\n".join(part[4:].strip(b" \t\r\n") for part in lines)
                return SMTPResponse(code, message.decode("utf-8", "surrogateescape"))
        return None

    def eof_received(self) -> bool:
        self.error = self.error or aiosmtplib.SMTPServerDisconnected("Unexpected EOF received")
        self._wake()
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        lost = aiosmtplib.SMTPServerDisconnected("Connection lost")
        lost.__cause__ = exc
        self.error = self.error or lost
        self._wake()
        self.inner.connection_lost(exc)  # aiosmtplib's connection state stays true

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self, timeout_s: float | None) -> SMTPResponse:
        """The next reply in order; raises once the connection broke before it came."""
        if not self.replies and self.error is None:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout_s):
                    await self.waiter
            except TimeoutError as exc:
                raise aiosmtplib.SMTPReadTimeoutError(
                    "Timed out waiting for server response"
                ) from exc
            finally:
                self.waiter = None
        if self.replies:
            return self.replies.popleft()
        raise cast(Exception, self.error)


async def greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO (HELO if refused) right after connecting, as aiosmtplib would before the first
    MAIL: which extensions the server has decides how a message is sent."""
    if not smtp.is_ehlo_or_helo_needed:
        return
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not smtp.is_connected:
            raise
        await smtp.helo()


@dataclass(frozen=True)
class Envelope:
    """One message's commands (MAIL, each RCPT, DATA), worded as aiosmtplib's sendmail
    words them (SIZE when offered), and its body with CRLF line ends."""

    sender: str
    recipients: list[str]
    commands: bytes
    body: bytes

    @classmethod
    def of(
        cls, smtp: aiosmtplib.SMTP, sender: str, recipients: list[str], message: bytes
    ) -> Envelope:
        """Raises ValueError on an address that cannot go on a command line."""
        body = crlf_lines(message)
        size = f" size={len(body)}" if smtp.supports_extension("size") else ""
        lines = [f"MAIL FROM:{_quoted(sender)}{size}\r\n"]
        lines += [f"RCPT TO:{_quoted(to)}\r\n" for to in recipients]
        lines.append("DATA\r\n")
        return cls(sender, recipients, "".join(lines).encode("ascii"), body)


async def send_pipelined(
    smtp: aiosmtplib.SMTP,
    sender: str,
    recipients: list[str],
    message: bytes,
    timeout_s: float | None,
) -> None:
    """One message (ASCII addresses) over a session whose EHLO offered PIPELINING.

    Raises what aiosmtplib's sendmail raises for the same replies; returns only once the
    server answered 250 to the body.
    """
    protocol, transport = smtp.protocol, smtp.transport
    if protocol is None or transport is None or transport.is_closing():
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    envelope = Envelope.of(smtp, sender, recipients, message)
    replies = Replies(protocol)
    transport.set_protocol(replies)
    try:
        await _exchange(smtp, cast(asyncio.WriteTransport, transport), replies, envelope, timeout_s)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        # Replies may be missing or late: the connection is out of step, end it.
        transport.set_protocol(protocol)
        smtp.close()
        raise
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        transport.set_protocol(protocol)
        await _reset(smtp)
        raise
    finally:  # aiosmtplib's reader back whatever happened (RSET and QUIT use it)
        transport.set_protocol(protocol)


async def _exchange(
    smtp: aiosmtplib.SMTP,
    transport: asyncio.WriteTransport,
    replies: Replies,
    envelope: Envelope,
    timeout_s: float | None,
) -> None:
    transport.write(envelope.commands)
    wanted = len(envelope.recipients)
    got: list[SMTPResponse] = []
    broken: Exception | None = None
    try:
        for _ in range(wanted + 2):  # MAIL, each RCPT, DATA: one reply each, in order
            got.append(await replies.next(timeout_s))
    except (aiosmtplib.SMTPException, TimeoutError) as exc:
        broken = exc  # judged below: a refusal that came first is what the caller hears
    if isinstance(broken, aiosmtplib.SMTPResponseException) or any(
        reply.code == CLOSING for reply in got
    ):
        smtp.close()  # an unreadable reply, or the server closing: this session is over
    mail, rcpts = got[:1], got[1 : wanted + 1]
    data = got[-1] if len(got) == wanted + 2 else None
    if data is not None and data.code == 354 and _nothing_to_deliver(mail, rcpts):
        # RFC 2920 3.1: DATA accepted although nothing can be delivered: a lone dot ends it.
        transport.write(b".\r\n")
        await replies.next(timeout_s)
    _raise_refusal(envelope, mail, rcpts, data)
    if broken is not None or data is None:
        raise broken or aiosmtplib.SMTPServerDisconnected("Connection lost")
    transport.write(dot_stuffed(envelope.body) + b".\r\n")
    done = await replies.next(timeout_s)
    if done.code == CLOSING:
        smtp.close()
    if done.code != 250:
        raise aiosmtplib.SMTPDataError(done.code, done.message)


def _accepted(reply: SMTPResponse) -> bool:
    return reply.code in (250, 251)  # 251: "will forward", accepted as aiosmtplib does


def _nothing_to_deliver(mail: list[SMTPResponse], rcpts: list[SMTPResponse]) -> bool:
    return not mail or mail[0].code != 250 or not any(_accepted(r) for r in rcpts)


def _raise_refusal(
    envelope: Envelope,
    mail: list[SMTPResponse],
    rcpts: list[SMTPResponse],
    data: SMTPResponse | None,
) -> None:
    """The first refusal in command order, raised as aiosmtplib's lock-step send raises it."""
    if mail and mail[0].code != 250:
        raise aiosmtplib.SMTPSenderRefused(mail[0].code, mail[0].message, envelope.sender)
    if len(rcpts) == len(envelope.recipients) and not any(_accepted(r) for r in rcpts):
        raise aiosmtplib.SMTPRecipientsRefused(
            [
                aiosmtplib.SMTPRecipientRefused(r.code, r.message, to)
                for r, to in zip(rcpts, envelope.recipients, strict=True)
            ]
        )
    if data is not None and data.code != 354:
        raise aiosmtplib.SMTPDataError(data.code, data.message)


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    """RSET after a refusal, as aiosmtplib's sendmail does; its own failure is not the news."""
    if not smtp.is_connected:
        return
    with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
        await smtp.rset()
